"""Fixtures of the tracking tests: backends and ports on the session's real MLflow server
(``mlflow_server``, tests/integration/conftest.py).

Tests share the server but never each other's data: each test names its experiments with its
own prefix (``EXPERIMENT_NAME_TEMPLATE``) and uses fresh job ids and stream namespaces.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from mlflow.tracking import MlflowClient

from llmops_tracking.adapters.mlflow import MlflowTracking, mlflow_client
from llmops_tracking.adapters.redis_locks import RedisRunLocks
from llmops_tracking.ports import TrackingPorts

from support.mlflow_server import MlflowServer


@pytest.fixture
def mlflow_reader(mlflow_server: MlflowServer) -> MlflowClient:
    """A plain client to read back what the worker wrote."""
    return mlflow_client(mlflow_server.url, max_retries=0, timeout_s=10)


@pytest.fixture
def mlflow_backend(mlflow_server: MlflowServer) -> MlflowTracking:
    """The adapter under test, built as ``app.py`` builds it."""
    return MlflowTracking(mlflow_client(mlflow_server.url, max_retries=0, timeout_s=10))


@pytest.fixture
def template() -> str:
    """An experiment name template no other test uses."""
    return f"test-{uuid.uuid4().hex[:8]}/{{environment}}/{{job_type}}"


@pytest.fixture
def locks(redis: aioredis.Redis) -> RedisRunLocks:
    """The per-job run locks on the real Redis, in a namespace no other test uses."""
    return RedisRunLocks(redis, namespace=f"test-{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def ports(mlflow_backend: MlflowTracking, locks: RedisRunLocks, template: str) -> TrackingPorts:
    """Handler ports on the real MLflow server and Redis, environment ``dev``."""
    return TrackingPorts(
        backend=mlflow_backend, locks=locks, environment="dev", experiment_name_template=template
    )
