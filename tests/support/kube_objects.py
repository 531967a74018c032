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
