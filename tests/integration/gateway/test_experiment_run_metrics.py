"""Live run metrics on ``/experiment-run``, from an MLflow ``runs/get`` test double.

The double (``mlflow_double.py``) speaks MLflow's real REST shape; the real MLflow server is
covered by the end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from llmops_gateway.adapters.mlflow_metrics import MetricsUnavailableError, MlflowMetrics
from llmops_shared.events import Phase, StatusEntity, status_updated

from integration.gateway.harness import API, Gateway
from integration.gateway.mlflow_double import mlflow_runs_server

pytestmark = pytest.mark.integration

RUN_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


async def job_with_mlflow_run(gateway: Gateway) -> str:
    await gateway.register_base_model()
    job_id: str = (await gateway.submit()).json()["id"]
    report = status_updated(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=RUN_ID,
        phase=Phase.RUNNING,
        reporter="tracking",
        details={
            "job_id": job_id,
            "experiment_id": "7",
            "experiment_name": "llama-3-8b-sft-v1",
            "run_url": f"http://mlflow.local/#/experiments/7/runs/{RUN_ID}",
            "backend": "mlflow",
            "params": {"method": "lora"},
            "tags": {},
        },
    )
    await gateway.publish_status(report)
    await gateway.wait_processed(1)
    return job_id


async def test_metrics_are_read_live_from_mlflow(start_gateway: Callable[..., Any]) -> None:
    with mlflow_runs_server({RUN_ID: {"loss": 0.42, "eval_accuracy": 0.9}}) as uri:
        gateway: Gateway = await start_gateway(mlflow_tracking_uri=uri)
        job_id = await job_with_mlflow_run(gateway)
        response = await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")
    assert response.status_code == 200
    run = response.json()
    assert run["metrics"] == {"loss": 0.42, "eval_accuracy": 0.9}
    assert run["metricsError"] is None
    assert run["trackingUrl"].endswith(RUN_ID)


async def test_unreachable_mlflow_gives_the_run_without_metrics(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(mlflow_tracking_uri="http://127.0.0.1:1")
    job_id = await job_with_mlflow_run(gateway)
    response = await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "Running"
    assert run["metrics"] == {}
    assert "MLflow unreachable" in run["metricsError"]


async def test_adapter_reports_unknown_runs_and_odd_bodies() -> None:
    with mlflow_runs_server({RUN_ID: {"loss": 1.0}}) as uri:
        async with httpx.AsyncClient(timeout=2) as client:
            mlflow = MlflowMetrics(client, uri)
            assert await mlflow.latest_metrics(RUN_ID) == {"loss": 1.0}
            with pytest.raises(MetricsUnavailableError, match=r"404.*RESOURCE_DOES_NOT_EXIST"):
                await mlflow.latest_metrics("missing")
            odd = MlflowMetrics(client, uri + "not-mlflow/")
            with pytest.raises(MetricsUnavailableError, match="404"):
                await odd.latest_metrics(RUN_ID)
