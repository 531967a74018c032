"""Pure functions from training requests to manifests and from live objects to phases.

No I/O and no clock: the same request and options always give byte-identical YAML, which is
what the golden tests and GitOps diffs rely on.
"""
