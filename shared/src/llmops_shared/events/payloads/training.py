"""Payloads on ``llmops.training``: consumed by tracking (MLflow) and workflow (Argo), and the
facts a training pipeline reports back.

The pipeline's status reports (``llmops.status.pipeline.updated.v1``) carry
``details.registered_model`` (:class:`RegisteredModel`) once the ``register`` stage created the
job's MLflow model version: the gateway resolves a DeploymentSpec's ``model_ref`` to its
``storage_uri``, so an endpoint serves exactly the artifact the job trained.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import Name, Reason, ResourceId, Uri, VersionTag
from llmops_shared.events.names import Stream
from llmops_shared.specs import TrainJobSpec


class DatasetVersionPin(BaseModel):
    """Exactly which content a job trains on: a recorded dataset version, by content address.

    The trainer's ``prepare_data`` reads the version's manifest (the '.dir' object ``digest``
    in a DVC remote, or the built-in store's manifest of ``tag``) and every file by its md5
    from ``remote_uri``, checking each hash: what sits at the dataset's ``storage_uri`` today
    does not matter.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version_id: ResourceId = Field(description="Id of the dataset version.")
    dataset_id: ResourceId = Field(description="Catalog id of the dataset.")
    backend: Literal["dvc", "builtin"] = Field(description="Which store recorded the version.")
    tag: VersionTag = Field(description="The version's tag (a git tag under DVC).")
    digest: str = Field(
        pattern=r"^[0-9a-f]{32}\.dir$",
        description="DVC's '.dir' md5 of the version's manifest (both backends compute it).",
    )
    remote_uri: Uri = Field(
        description="Where the content-addressed objects are: the DVC remote (files/md5/ab/"
        "cdef...) or the built-in store directory (objects/ab/cdef...)."
    )
    revision: str | None = Field(
        default=None, max_length=256, description="Git commit of the version's tag (DVC)."
    )


class RegisteredModel(BaseModel):
    """The MLflow model version a pipeline's ``register`` stage created
    (``details.registered_model`` of pipeline reports)."""

    model_config = ConfigDict(extra="ignore")

    name: Name = Field(description="Registered model name (the job's output.artifact_name).")
    version: Name | None = Field(
        default=None, description="MLflow model version; null when MLflow is not configured."
    )
    run_id: Name | None = Field(default=None, description="The job's MLflow run.")
    source: str | None = Field(
        default=None, max_length=2048, description="The version's source as MLflow stores it."
    )
    storage_uri: Uri = Field(
        description="Where the model's files are, in a form a model server can read (the "
        "source with mlflow-artifacts: resolved to the artifact store)."
    )


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
    base_model_uri: Uri | None = Field(
        default=None,
        description="Where the base model's files are: the catalog entry's storage_uri, its "
        "downloaded snapshot, or hf://<repo>@<commit> for an import without a snapshot; null "
        "when the catalog knows no location.",
    )
    dataset_version: DatasetVersionPin | None = Field(
        default=None,
        description="The recorded dataset version the spec's dataset_ref names; null when the "
        "dataset is not versioned in the catalog (the trainer then reads storage_uri as is).",
    )

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
