"""A training job's experiment run: what tracking reported, with MLflow's live metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llmops_gateway.db import repository
from llmops_gateway.db.models import ExperimentRun
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import MetricsUnavailableError, NotFoundError
from llmops_gateway.domain.training import get_training_job


class MetricsReader(Protocol):
    """MLflow's REST API (:class:`llmops_gateway.adapters.mlflow_metrics.MlflowMetrics`)."""

    async def latest_metrics(self, run_id: str) -> Mapping[str, float]:
        """The latest value of each of the run's metrics; :class:`MetricsUnavailableError`."""
        ...


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """The run as stored, its metrics (live from MLflow when it is the backend) and why they
    are missing, if they are."""

    run: ExperimentRun
    metrics: dict[str, Any]
    error: str | None


def _load_run(sessions: SessionFactory, job_id: str) -> ExperimentRun:
    with sessions() as session:
        run = repository.experiment_run_for_job(session, job_id)
        if run is None:
            get_training_job(sessions, job_id)  # 404 for the job itself first
            raise NotFoundError(f"no experiment run reported yet for job {job_id}")
    return run


async def read_experiment_run(
    sessions: SessionFactory, job_id: str, mlflow: MetricsReader | None
) -> RunMetrics:
    """The job's run; with MLflow, its metrics are read live (never an error here: ``error``
    says why not: MLflow unreachable, or not configured on the gateway)."""
    run = await asyncio.to_thread(_load_run, sessions, job_id)
    if run.backend != "mlflow":
        return RunMetrics(run, dict(run.metrics), None)
    if mlflow is None:
        error = "MLFLOW_TRACKING_URI is not configured on the gateway"
        return RunMetrics(run, dict(run.metrics), error)
    try:
        return RunMetrics(run, dict(await mlflow.latest_metrics(run.run_id)), None)
    except MetricsUnavailableError as exc:
        return RunMetrics(run, dict(run.metrics), str(exc))
