"""Payloads on ``llmops.training``: consumed by tracking (MLflow) and workflow (Argo)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import Reason, ResourceId
from llmops_shared.events.names import Stream
from llmops_shared.specs import TrainJobSpec


class TrainingJobSubmitted(EventPayload):
    """A training job was accepted by the gateway and should run.

    Workers derive every external name from ``job_id`` (Argo workflow ``train-<job_id>``, MLflow
    run tagged with it), so a redelivered event finds and reuses what the first delivery made.
    """

    event_type: ClassVar[str] = "llmops.training.job.submitted.v1"
    stream: ClassVar[Stream] = Stream.TRAINING
    subject_description: ClassVar[str] = "data.job_id"

    job_id: ResourceId = Field(description="Id of the training job.")
    model_id: ResourceId | None = Field(
        default=None, description="Catalog id of the base model, when it is in the catalog."
    )
    dataset_id: ResourceId | None = Field(
        default=None, description="Catalog id of the dataset, when it is in the catalog."
    )
    spec: TrainJobSpec = Field(description="The validated TrainJobSpec.")

    def subject(self) -> str:
        """The job id."""
        return self.job_id


class TrainingJobCancelled(EventPayload):
    """A training job was cancelled by a user; workers stop what they started for it."""

    event_type: ClassVar[str] = "llmops.training.job.cancelled.v1"
    stream: ClassVar[Stream] = Stream.TRAINING
    subject_description: ClassVar[str] = "data.job_id"

    job_id: ResourceId = Field(description="Id of the training job.")
    reason: Reason = Field(description="Why it was cancelled, for the status history.")

    def subject(self) -> str:
        """The job id."""
        return self.job_id


class ExperimentMigrationRequested(EventPayload):
    """A job's built-in run record should move to the tracking system (``migrate
    experiments-to-mlflow``).

    Carries what the gateway stored of the built-in run, so the tracking worker can recreate it
    without reading the gateway's database: the run it creates is tagged with ``job_id`` like
    any other, so a redelivered migration finds and reuses it. Only the tracking worker acts on
    it; the workflow worker on the same stream ignores it (nothing is re-run).
    """

    event_type: ClassVar[str] = "llmops.training.experiment_migration.requested.v1"
    stream: ClassVar[Stream] = Stream.TRAINING
    subject_description: ClassVar[str] = "data.job_id"

    job_id: ResourceId = Field(description="Id of the training job whose run moves.")
    spec: TrainJobSpec = Field(description="The job's TrainJobSpec, as submitted.")
    target: Literal["mlflow"] = Field(default="mlflow", description="Where the run moves to.")
    run_status: str = Field(
        max_length=32,
        description="The built-in run's status (RUNNING, FINISHED, FAILED, KILLED); a terminal "
        "one ends the migrated run the same way.",
    )
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="Parameters the built-in run recorded."
    )
    tags: dict[str, JsonValue] = Field(
        default_factory=dict, description="Tags the built-in run recorded."
    )

    def subject(self) -> str:
        """The job id."""
        return self.job_id
