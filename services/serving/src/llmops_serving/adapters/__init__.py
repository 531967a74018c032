"""Adapters: the only modules of the serving service that talk to external systems.

``kserve`` and ``deployment`` drive a cluster (on :mod:`llmops_shared.kube.resources`, with
``kinds`` for every API call they make and ``kube`` for what they share); ``manifests`` writes
files. All implement :class:`llmops_serving.ports.ServingBackend`.
"""
