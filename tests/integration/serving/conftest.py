"""Fixtures of the serving tests: the Kubernetes API test double and backends on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmops_serving.adapters.deployment import DeploymentBackend
from llmops_serving.adapters.kserve import KServeBackend

from support.k8s_server import KubeApiServer


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    """A fresh API server double per test (no state shared between tests)."""
    with KubeApiServer() as server:
        yield server


@pytest.fixture
def kserve(kube: KubeApiServer) -> KServeBackend:
    """The KServe adapter on the real ``kubernetes`` client, built as ``app.py`` builds it."""
    return KServeBackend(kube.api_client(), request_timeout_s=5)


@pytest.fixture
def deployments(kube: KubeApiServer) -> DeploymentBackend:
    return DeploymentBackend(kube.api_client(), request_timeout_s=5)
