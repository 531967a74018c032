"""Cluster access of the workflow worker: the shared Kubernetes engine with its errors and
field manager.

See :mod:`llmops_shared.kube.api` for how failures are classified and
:mod:`llmops_shared.kube.resources` for what every kind gets (server-side apply...).
"""

from __future__ import annotations

from typing import Final

from kubernetes import client

from llmops_shared.kube.api import KubeCalls
from llmops_shared.kube.resources import Cluster
from llmops_workflow.ports import WorkflowRejected, WorkflowUnavailable
from llmops_workflow.render import names

CALLS: Final = KubeCalls(unavailable=WorkflowUnavailable, rejected=WorkflowRejected)


def cluster(api_client: client.ApiClient, request_timeout_s: float) -> Cluster:
    """The workflow worker's access to the cluster of ``api_client``."""
    return Cluster(api_client, CALLS, names.FIELD_MANAGER, request_timeout_s)
