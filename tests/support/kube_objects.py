"""The built-in serving objects as the Kubernetes API test double (:mod:`support.k8s_server`)
addresses them, and the status their controller writes once they serve.

Shared by the serving worker's migration tests and the gateway's ``migrate serving-to-kserve`` /
``rollback integrations`` tests, which play the controllers with ``KubeApiServer.set_status``.
"""

from __future__ import annotations

from typing import Any, Final

NS: Final = "llm-ops-dev"
"""The namespace of the ``dev`` environment's endpoints."""

DEPLOYMENT: Final = ("apps/v1", "deployments")
SERVICE: Final = ("v1", "services")

AVAILABLE: Final[dict[str, Any]] = {
    "observedGeneration": 1,
    "updatedReplicas": 1,
    "availableReplicas": 1,
    "conditions": [{"type": "Available", "status": "True"}],
}
"""A Deployment's status once its one replica is available (what ``set_status`` writes)."""


def kserve_service(name: str, isvc: dict[str, Any]) -> dict[str, Any]:
    """The ``Service`` KServe creates for an InferenceService in Serverless mode: the same name,
    ``ExternalName`` to the ingress gateway, an ownerReference to the InferenceService and none
    of llm-ops' labels."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"serving.kserve.io/inferenceservice": name},
            "ownerReferences": [
                {
                    "apiVersion": "serving.kserve.io/v1beta1",
                    "kind": "InferenceService",
                    "name": name,
                    "uid": isvc["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "type": "ExternalName",
            "externalName": "knative-local-gateway.istio-system.svc.cluster.local",
        },
    }
