"""Fixtures of the workflow tests: the Kubernetes API test double and backends on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmops_workflow.adapters.argo import ArgoBackend
from llmops_workflow.adapters.jobs import JobBackend

from support.k8s_server import KubeApiServer


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    """A fresh API server double per test (no state shared between tests)."""
    with KubeApiServer() as server:
        yield server


@pytest.fixture
def argo(kube: KubeApiServer) -> ArgoBackend:
    """The Argo adapter on the real ``kubernetes`` client, built as ``app.py`` builds it."""
    return ArgoBackend(kube.api_client(), request_timeout_s=5)


@pytest.fixture
def jobs(kube: KubeApiServer) -> JobBackend:
    return JobBackend(kube.api_client(), request_timeout_s=5)
