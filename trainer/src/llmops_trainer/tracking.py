"""Logging to the job's existing MLflow run, and nothing else.

The tracking service creates one run per job (tagged ``llmops.job_id``) before the pipeline
starts, and the pipeline hands its id to every stage as ``MLFLOW_RUN_ID``. The stages therefore
only ever talk to that run through ``MlflowClient(run_id=...)``: ``mlflow.start_run``,
autologging and transformers' ``MLflowCallback`` would create or end runs of their own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmops_trainer.env import StageEnv

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_log = logging.getLogger(__name__)

FAILED_STAGE_TAG = "llmops.failed_stage"
MODEL_VERSION_TAG = "llmops.model_version"
JOB_ID_TAG = "llmops.job_id"
PARAM_VALUE_LIMIT = 6000
"""MLflow's longest param value."""
BATCH_LIMIT = 1000
"""MLflow's most metrics per ``log_batch`` call (params: 100)."""
PARAM_BATCH_LIMIT = 100


def now_ms() -> int:
    """Wall-clock milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


class RunTracker:
    """The job's MLflow run, seen through ``MlflowClient``."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def from_env(cls, env: StageEnv, *, stage: str) -> RunTracker | None:
        """The tracker of the job's run, or None when MLflow is not configured (no tracking
        URI) or the run is unknown (no ``MLFLOW_RUN_ID``: logged as a warning)."""
        if env.tracking_uri is None:
            return None
        if env.run_id is None:
            _log.warning(
                "MLFLOW_TRACKING_URI is set but MLFLOW_RUN_ID is not: %s logs nothing to MLflow",
                stage,
            )
            return None
        from mlflow.tracking import MlflowClient

        return cls(MlflowClient(tracking_uri=env.tracking_uri), env.run_id)

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log params, skipping those the run already holds.

        MLflow params are write-once; a retried stage logs the same values again, which is
        fine, but a value that changed between attempts cannot be overwritten: that is logged
        as a warning and the first value stays."""
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh: list[Param] = []
        for key, raw in params.items():
            value = str(raw)[:PARAM_VALUE_LIMIT]
            if key in existing:
                if existing[key] != value:
                    _log.warning(
                        "MLflow param %s is already %r on run %s; not changing it to %r",
                        key,
                        existing[key],
                        self.run_id,
                        value,
                    )
                continue
            fresh.append(Param(key, value))
        for start in range(0, len(fresh), PARAM_BATCH_LIMIT):
            self.client.log_batch(self.run_id, params=fresh[start : start + PARAM_BATCH_LIMIT])

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Log several metrics at one step, in one call."""
        stamp = now_ms()
        self.log_metric_rows([(key, float(value), stamp, step) for key, value in metrics.items()])

    def log_metric_rows(self, rows: Sequence[tuple[str, float, int, int]]) -> None:
        """Log ``(key, value, timestamp_ms, step)`` rows with as few calls as MLflow allows."""
        from mlflow.entities import Metric

        metrics = [Metric(key, value, stamp, step) for key, value, stamp, step in rows]
        for start in range(0, len(metrics), BATCH_LIMIT):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH_LIMIT])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set run tags in one call."""
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_dataset(
        self,
        *,
        name: str,
        digest: str,
        source_type: str,
        source: Mapping[str, Any],
        tags: Mapping[str, str],
        schema: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a dataset as an input of the run, in the ``training`` context."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=digest,
            source_type=source_type,
            source=json.dumps(dict(source), sort_keys=True),
            schema=json.dumps(dict(schema)) if schema is not None else None,
            profile=json.dumps(dict(profile)) if profile is not None else None,
        )
        input_tags = [InputTag("mlflow.data.context", "training")]
        input_tags += [InputTag(key, value) for key, value in tags.items()]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, input_tags)])

    def mark_failed(self, stage: str) -> None:
        """Tag the run with the stage that failed and end it FAILED."""
        self.set_tags({FAILED_STAGE_TAG: stage})
        self.client.set_terminated(self.run_id, status="FAILED")

    def finish(self) -> None:
        """End the run FINISHED (register does this once the model version exists)."""
        self.client.set_terminated(self.run_id, status="FINISHED")


def flat_params(prefix: str, values: Mapping[str, object]) -> dict[str, str]:
    """``{prefix.key: str(value)}`` without the Nones, as the stages log their params."""
    return {f"{prefix}.{key}": str(value) for key, value in values.items() if value is not None}
