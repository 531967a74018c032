"""Every Kubernetes API call the workflow worker makes, per kind of object.

Each verb binds a ``kubernetes`` method to one object; :class:`~llmops_shared.kube.resources.
KubeObjects` runs it (timeouts, errors, "absent" answers). The Helm chart's Role grants the
worker exactly these calls (tests/deploy/test_rbac.py reads them here).
"""

from __future__ import annotations

from functools import partial

from kubernetes import client

from llmops_shared.kube.api import APPLY_CONTENT_TYPE, MERGE_PATCH_CONTENT_TYPE
from llmops_shared.kube.resources import Call, Verbs
from llmops_workflow.adapters.objects import JOB, WORKFLOW
from llmops_workflow.render import names


class Workflows(Verbs):
    """Argo's Workflows (a custom resource)."""

    kind = WORKFLOW

    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = client.CustomObjectsApi(api_client)

    def read(self, namespace: str, name: str) -> Call:
        return partial(
            self._api.get_namespaced_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            namespace,
            names.WORKFLOW_PLURAL,
            name,
        )

    def listing(self, namespace: str) -> Call:
        return partial(
            self._api.list_namespaced_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            namespace,
            names.WORKFLOW_PLURAL,
        )

    def apply(self, namespace: str, name: str) -> Call:
        return partial(
            self._api.patch_namespaced_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            namespace,
            names.WORKFLOW_PLURAL,
            name,
            _content_type=APPLY_CONTENT_TYPE,
        )

    def merge_patch(self, namespace: str, name: str) -> Call:
        return partial(
            self._api.patch_namespaced_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            namespace,
            names.WORKFLOW_PLURAL,
            name,
            _content_type=MERGE_PATCH_CONTENT_TYPE,
        )

    def ping(self) -> Call:
        """A cheap list: the API answers and the resource exists."""
        return partial(
            self._api.list_cluster_custom_object,
            names.ARGO_GROUP,
            names.ARGO_VERSION,
            names.WORKFLOW_PLURAL,
            limit=1,
        )


class Jobs(Verbs):
    """The built-in format's batch/v1 Jobs, one per stage: created (a Job's pod template is
    immutable), then suspended or resumed by merge patches."""

    kind = JOB

    def __init__(self, api_client: client.ApiClient) -> None:
        self._batch = client.BatchV1Api(api_client)

    def listing(self, namespace: str) -> Call:
        return partial(self._batch.list_namespaced_job, namespace)

    def create(self, namespace: str) -> Call:
        return partial(self._batch.create_namespaced_job, namespace)

    def merge_patch(self, namespace: str, name: str) -> Call:
        return partial(
            self._batch.patch_namespaced_job,
            name,
            namespace,
            _content_type=MERGE_PATCH_CONTENT_TYPE,
        )

    def ping(self) -> Call:
        """The batch API answers."""
        return partial(self._batch.get_api_resources)
