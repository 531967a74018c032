"""Adapters: the only modules of the serving service that talk to external systems.

``kserve`` and ``deployment`` (the only modules importing kubernetes, with ``kube`` for what
they share) drive a cluster; ``manifests`` writes files. All implement
:class:`llmops_serving.ports.ServingBackend`.
"""
