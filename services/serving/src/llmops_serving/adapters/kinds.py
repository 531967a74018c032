"""Every Kubernetes API call the serving worker makes, per kind of object.

Each verb binds a ``kubernetes`` method to one object; :class:`~llmops_shared.kube.resources.
KubeObjects` runs it (timeouts, errors, "absent" answers). The custom resource's verbs are the
shared :class:`~llmops_shared.kube.custom.CustomObjects`, of those :data:`INFERENCE_SERVICES`
declares. The Helm chart's Roles grant the worker exactly these calls (tests/deploy/test_rbac.py
reads them here).
"""

from __future__ import annotations

from functools import partial
from typing import Final

from kubernetes import client

from llmops_serving.render import names
from llmops_shared.kube.api import APPLY_CONTENT_TYPE
from llmops_shared.kube.custom import CustomResource
from llmops_shared.kube.objects import Kind
from llmops_shared.kube.resources import Call, Verbs

INFERENCE_SERVICE: Final = Kind(names.KSERVE_API_VERSION, "InferenceService")
DEPLOYMENT: Final = Kind("apps/v1", "Deployment")
SERVICE: Final = Kind("v1", "Service")

INFERENCE_SERVICES: Final = CustomResource(
    INFERENCE_SERVICE,
    names.KSERVE_PLURAL,
    uses=frozenset({"read", "listing", "apply", "delete", "ping"}),
)
"""KServe's InferenceServices: the serving worker reads, lists, applies and deletes them."""


class Deployments(Verbs):
    """The built-in format's apps/v1 Deployments."""

    kind = DEPLOYMENT

    def __init__(self, api_client: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api_client)

    def read(self, namespace: str, name: str) -> Call:
        return partial(self._apps.read_namespaced_deployment, name, namespace)

    def listing(self, namespace: str) -> Call:
        return partial(self._apps.list_namespaced_deployment, namespace)

    def apply(self, namespace: str, name: str) -> Call:
        return partial(
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            _content_type=APPLY_CONTENT_TYPE,
        )

    def delete(self, namespace: str, name: str) -> Call:
        return partial(self._apps.delete_namespaced_deployment, name, namespace)


class Services(Verbs):
    """The built-in format's core/v1 Services."""

    kind = SERVICE

    def __init__(self, api_client: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api_client)

    def read(self, namespace: str, name: str) -> Call:
        return partial(self._core.read_namespaced_service, name, namespace)

    def apply(self, namespace: str, name: str) -> Call:
        return partial(
            self._core.patch_namespaced_service,
            name,
            namespace,
            _content_type=APPLY_CONTENT_TYPE,
        )

    def delete(self, namespace: str, name: str) -> Call:
        return partial(self._core.delete_namespaced_service, name, namespace)

    def ping(self) -> Call:
        """The core API answers."""
        return partial(self._core.get_api_resources)
