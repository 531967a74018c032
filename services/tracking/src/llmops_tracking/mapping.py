"""How a submitted training job maps onto a tracked run: experiment, run name, params, tags.

Pure functions of the event and the settings, so every delivery of one event asks the backend
for exactly the same run (the reliability contract's "deterministic external names").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from pydantic import JsonValue

from llmops_shared.events import ExperimentMigrationRequested, TrainingJobSubmitted
from llmops_shared.specs import TrainJobSpec
from llmops_tracking.ports import RunRequest

TAG_PREFIX: Final = "llmops."
JOB_ID_TAG: Final = "llmops.job_id"
CANCEL_REASON_TAG: Final = "llmops.cancel_reason"
MIGRATED_FROM_TAG: Final = "llmops.migrated_from"
"""Set on a run that ``migrate experiments-to-mlflow`` moved from the built-in backend."""
MIGRATED_FROM: Final = "builtin"
STARTED_AT_TAG: Final = "llmops.builtin_started_at"
"""ISO 8601 time the built-in record was created: a migrated run's MLflow ``start_time``."""
ENDED_AT_TAG: Final = "llmops.builtin_ended_at"
"""ISO 8601 time the built-in record (or its job) ended: a migrated run's MLflow ``end_time``."""


def epoch_ms(value: JsonValue) -> int | None:
    """An ISO 8601 time (naive means UTC) as epoch milliseconds; ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def run_name(job_id: str) -> str:
    """Same name as the job's Argo workflow (``train-<job_id>``), so the two are easy to join."""
    return f"train-{job_id}"


def experiment_name(template: str, *, environment: str, spec: TrainJobSpec) -> str:
    """The job's experiment from ``EXPERIMENT_NAME_TEMPLATE`` (placeholders checked at start)."""
    return template.format(
        environment=environment, job_type=spec.job_type.value, model_family=spec.model_family
    )


def flatten_params(spec: TrainJobSpec) -> dict[str, str]:
    """The spec as MLflow params: dotted keys, string values, ``None`` left out.

    Values are ``str()`` of the JSON value (``0.0001``, ``4``, ``True``), as ``mlflow.log_params``
    would write them, so a run logged by hand from the same spec compares equal.
    """
    flat: dict[str, str] = {}
    _flatten(spec.model_dump(mode="json"), "", flat)
    return flat


def _flatten(value: JsonValue, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    elif value is not None:
        out[prefix.removesuffix(".")] = str(value)


def run_tags(job: TrainingJobSubmitted, *, environment: str) -> dict[str, str]:
    """Tags to find and filter runs by: the job, its data, its model, where it ran."""
    spec = job.spec
    tags: Mapping[str, str | None] = {
        JOB_ID_TAG: job.job_id,
        "llmops.job_type": spec.job_type.value,
        "llmops.model_family": spec.model_family,
        "llmops.model_id": job.model_id,
        "llmops.base_model": spec.base_model_ref,
        "llmops.dataset": f"{spec.dataset_ref.name}@{spec.dataset_ref.version}",
        "llmops.dataset_id": job.dataset_id,
        "llmops.artifact_name": spec.output.artifact_name,
        "llmops.environment": environment,
    }
    return {key: value for key, value in tags.items() if value is not None}


def run_request(
    job: TrainingJobSubmitted, *, environment: str, experiment_name_template: str
) -> RunRequest:
    """Everything the backend needs to create (or find) the job's run."""
    return RunRequest(
        job_id=job.job_id,
        experiment_name=experiment_name(
            experiment_name_template, environment=environment, spec=job.spec
        ),
        run_name=run_name(job.job_id),
        params=flatten_params(job.spec),
        tags=run_tags(job, environment=environment),
    )


def recorded_value(value: JsonValue) -> str:
    """A param or tag value the gateway recorded, as MLflow stores it: strings as they are,
    scalars as :func:`flatten_params` writes them (``str()``), objects and lists as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _recorded(values: Mapping[str, JsonValue]) -> dict[str, str]:
    return {key: recorded_value(value) for key, value in values.items() if value is not None}


def migration_request(
    migration: ExperimentMigrationRequested, *, environment: str, experiment_name_template: str
) -> RunRequest:
    """The run a built-in run record moves to: the run its job would have had (same experiment,
    name, spec params and tags), plus what the built-in record holds (recorded values win: they
    are what users saw), tagged ``llmops.migrated_from=builtin``. The job id tag is always the
    event's, so a redelivered migration (or the job's own earlier run) is found and reused.
    The record's times, sent as the tags ``llmops.builtin_started_at`` / ``_ended_at`` (the
    event has no timestamps), become the run's start and end time."""
    job = TrainingJobSubmitted(job_id=migration.job_id, spec=migration.spec)
    base = run_request(
        job, environment=environment, experiment_name_template=experiment_name_template
    )
    return RunRequest(
        job_id=migration.job_id,
        experiment_name=base.experiment_name,
        run_name=base.run_name,
        params={**base.params, **_recorded(migration.params)},
        tags={
            **base.tags,
            **_recorded(migration.tags),
            JOB_ID_TAG: migration.job_id,
            MIGRATED_FROM_TAG: MIGRATED_FROM,
        },
        start_time_ms=epoch_ms(migration.tags.get(STARTED_AT_TAG)),
        end_time_ms=epoch_ms(migration.tags.get(ENDED_AT_TAG)),
    )
