"""Fixtures shared by the integration suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` (SQLite store, local artifacts) for the whole session, shared by
    the tracking suite and the gateway's migration script (starting one costs 10-30 s here).

    The outage test stops and restarts it; it is running again when that test ends. Webhooks
    to localhost are allowed (the model-version tests register their receivers; each test
    uses its own webhook name and deletes it afterwards). Tests never share data: each names
    its experiments and models with its own prefix. github-sync's reconcile tests, which read
    every version of the server, start their own.
    """
    with MlflowServer(tmp_path_factory.mktemp("mlflow"), webhooks=True) as server:
        yield server
