"""Adapters: the only modules of the workflow service that talk to external systems.

``argo`` and ``jobs`` drive a cluster (on :mod:`llmops_shared.kube.resources`, with ``kinds``
for every API call they make, ``kube`` for the cluster access and ``objects`` for how the
objects are seen), ``argo_server`` the Argo Server's REST API, ``manifests`` writes files and
``local`` runs the stages on this machine. All implement
:class:`llmops_workflow.ports.WorkflowBackend`.
"""
