"""Events, settings and look-ups shared by the tracking tests (fixtures are in conftest.py)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from llmops_shared.events import (
    Envelope,
    Event,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_tracking.config import TrackingSettings

from support.mlflow_server import free_port
from support.streams import FAST_CONSUMER as BASE_FAST_CONSUMER

FAST_CONSUMER = BASE_FAST_CONSUMER.model_copy(
    update={
        "claim_idle_ms": 60_000,  # pending entries stay with their consumer in these tests
        "janitor_interval_ms": 200,
        "retry_initial_backoff_s": 0.05,
        "retry_max_backoff_s": 0.2,
    }
)
"""Quick retries so outage and dead-letter tests finish in seconds."""

CORRELATION_ID = "req-tracking-test"


def unreachable_uri() -> str:
    """An http URI nothing listens on (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


def new_job_id() -> str:
    return str(uuid.uuid4())


def seed_spec(**hyperparams: Any) -> dict[str, Any]:
    """The seed's TrainJobSpec (quickstart 5.1), with hyperparams overridden."""
    data = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    data["hyperparams"].update(hyperparams)
    return data


def submitted(
    job_id: str | None = None,
    *,
    model_id: str | None = None,
    dataset_id: str | None = None,
    **hyperparams: Any,
) -> Envelope:
    """A ``TrainingJobSubmitted`` envelope as the gateway publishes it."""
    payload = TrainingJobSubmitted.model_validate(
        {
            "job_id": job_id or new_job_id(),
            "model_id": model_id,
            "dataset_id": dataset_id,
            "spec": seed_spec(**hyperparams),
        }
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def cancelled(job_id: str, reason: str = "user asked") -> Envelope:
    """A ``TrainingJobCancelled`` envelope as the gateway publishes it."""
    payload = TrainingJobCancelled(job_id=job_id, reason=reason)
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def received(envelope: Envelope) -> Event:
    """The event as a consumer decodes it off the stream."""
    return decode_event(encode_event(envelope))


def runs_of_job(client: MlflowClient, job_id: str) -> list[Run]:
    """Every run (active or deleted) in any experiment tagged with ``job_id``."""
    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    return list(
        client.search_runs(
            [e.experiment_id for e in experiments],
            filter_string=f"tags.`llmops.job_id` = '{job_id}'",
            run_view_type=ViewType.ALL,
        )
    )


def worker_settings(redis_url: str, namespace: str, **overrides: Any) -> TrackingSettings:
    """Settings of an in-process worker on its own namespace; nothing read from ``.env``."""
    values: dict[str, Any] = {
        "redis_url": SecretStr(redis_url),
        "stream_namespace": namespace,
        "health_port": 0,
        "log_json": False,
        "consumer": FAST_CONSUMER,
        **overrides,
    }
    return TrackingSettings(_env_file=None, **values)
