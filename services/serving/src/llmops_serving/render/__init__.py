"""Pure functions from deployment events to Kubernetes manifests (no I/O, no clients).

``inference_service`` renders KServe InferenceServices, ``builtin`` the plain Deployment +
Service, ``rollout`` the canary / promote / rollback transforms, ``status`` reads observed
objects back into phases; ``yaml`` dumps them deterministically. Every function is
deterministic in its inputs, so a redelivered event renders byte-identical YAML.
"""
