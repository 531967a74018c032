"""Every Kubernetes API call the workflow worker makes, per kind of object.

Each verb binds a ``kubernetes`` method to one object; :class:`~llmops_shared.kube.resources.
KubeObjects` runs it (timeouts, errors, "absent" answers). The custom resource's verbs are the
shared :class:`~llmops_shared.kube.custom.CustomObjects`, of those :data:`ARGO_WORKFLOWS`
declares. The Helm chart's Role grants the worker exactly these calls (tests/deploy/test_rbac.py
reads them here).
"""

from __future__ import annotations

from functools import partial
from typing import Final

from kubernetes import client

from llmops_shared.kube.api import MERGE_PATCH_CONTENT_TYPE
from llmops_shared.kube.custom import CustomResource
from llmops_shared.kube.resources import Call, Verbs
from llmops_workflow.adapters.objects import JOB, WORKFLOW
from llmops_workflow.render import names

ARGO_WORKFLOWS: Final = CustomResource(
    WORKFLOW,
    names.WORKFLOW_PLURAL,
    uses=frozenset({"read", "listing", "apply", "merge_patch", "ping"}),
)
"""Argo's Workflows: submitted by server-side apply, terminated by a merge patch."""


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
