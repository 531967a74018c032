"""Payloads on ``llmops.status``: progress reports from the workers, folded by the gateway.

There is one registered event type per entity kind (``llmops.status.<entity>.updated.v1``) so
that consumers can filter by type, and the ``entity`` in the data must agree with the type: each
type's payload class narrows ``entity`` to its own value.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Final, Literal

from pydantic import Field, JsonValue

from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import REASON_MAX_LENGTH, Name, Reason
from llmops_shared.events.names import Stream
from llmops_shared.events.payloads.details import (
    DatasetRestoreDetails,
    DatasetVersionDetails,
    DeploymentDetails,
    ExperimentRunDetails,
    JobDetails,
    ModelDetails,
    ModelVersionDetails,
    PipelineDetails,
    ReportDetails,
)

MAX_SEQ: Final = 2**63 - 1
"""Largest ``seq``: it must fit a signed 64-bit column (PostgreSQL BIGINT) in the read model."""


class Phase(StrEnum):
    """Where an entity is in its lifecycle.

    ``Ready`` is for long-lived things that serve (a deployment is up); ``Succeeded`` for things
    that finish (a job, a pipeline, an import). ``Degraded`` means up but unhealthy; ``Deleted``
    that the external resource is gone.
    """

    PENDING = "Pending"
    RUNNING = "Running"
    READY = "Ready"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEGRADED = "Degraded"
    CANCELLED = "Cancelled"
    DELETED = "Deleted"


_ENTITY_DESCRIPTION: Final = "Kind of entity; must match the event type."


class StatusEntity(StrEnum):
    """The kinds of entity a status event can be about."""

    JOB = "job"
    DEPLOYMENT = "deployment"
    PIPELINE = "pipeline"
    MODEL = "model"
    DATASET_VERSION = "dataset_version"
    DATASET_RESTORE = "dataset_restore"
    MODEL_VERSION = "model_version"
    EXPERIMENT_RUN = "experiment_run"

    # Validation errors quote the expected literal with repr(); "'job'" reads better in a
    # dead-letter reason than "<StatusEntity.JOB: 'job'>".
    __repr__ = str.__repr__


def new_seq() -> int:
    """A ``seq`` for a status event observed now: wall-clock nanoseconds since the epoch.

    Every reporter must use this unit: several services report on one entity (tracking and
    workflow both report on a job), and the gateway orders their reports by ``seq`` alone.
    """
    return time.time_ns()


class StatusUpdated(EventPayload):
    """The observed state of one entity changed (or was re-observed).

    ``seq`` orders the reports about one entity: the gateway applies a report only if its
    ``seq`` is greater than the last one it applied for that entity, so a late or redelivered
    report never overwrites a newer one. Producers use :func:`new_seq` (wall-clock nanoseconds
    at the time of the observation), which keeps reports from different services comparable.
    Not registered itself: publish one of its per-entity subclasses (see :func:`status_updated`).
    """

    stream: ClassVar[Stream] = Stream.STATUS
    subject_description: ClassVar[str] = "data.entity_id"

    entity: StatusEntity = Field(description=_ENTITY_DESCRIPTION)
    entity_id: Name = Field(
        description="Id of the entity (job/endpoint/dataset version id, '<model>/<version>' "
        "for a model version, the MLflow run id for an experiment run)."
    )
    phase: Phase = Field(description="Observed lifecycle phase.")
    reason: Reason | None = Field(
        default=None, description="Why the phase changed, mostly for Failed/Degraded."
    )
    details: ReportDetails = Field(
        default_factory=ReportDetails,
        description="What the reporter observed; each entity's event type has its own model.",
    )
    seq: int = Field(
        ge=0,
        le=MAX_SEQ,
        description="Monotonic per entity: wall-clock nanoseconds since the epoch when the state "
        "was observed; the gateway ignores a report whose seq is not greater than the last.",
    )
    reporter: Name = Field(description="Service that observed the state.")

    def subject(self) -> str:
        """The entity id."""
        return self.entity_id


class JobStatusUpdated(StatusUpdated):
    """Status of a training job."""

    event_type: ClassVar[str] = "llmops.status.job.updated.v1"
    entity: Literal[StatusEntity.JOB] = Field(description=_ENTITY_DESCRIPTION)
    details: JobDetails = Field(default_factory=JobDetails)


class DeploymentStatusUpdated(StatusUpdated):
    """Status of a serving deployment (entity id = endpoint id)."""

    event_type: ClassVar[str] = "llmops.status.deployment.updated.v1"
    entity: Literal[StatusEntity.DEPLOYMENT] = Field(description=_ENTITY_DESCRIPTION)
    details: DeploymentDetails = Field(default_factory=DeploymentDetails)


class PipelineStatusUpdated(StatusUpdated):
    """Status of a workflow pipeline run."""

    event_type: ClassVar[str] = "llmops.status.pipeline.updated.v1"
    entity: Literal[StatusEntity.PIPELINE] = Field(description=_ENTITY_DESCRIPTION)
    details: PipelineDetails = Field(default_factory=PipelineDetails)


class ModelStatusUpdated(StatusUpdated):
    """Status of a catalog model (e.g. an import from a registry)."""

    event_type: ClassVar[str] = "llmops.status.model.updated.v1"
    entity: Literal[StatusEntity.MODEL] = Field(description=_ENTITY_DESCRIPTION)
    details: ModelDetails = Field(default_factory=ModelDetails)


class DatasetVersionStatusUpdated(StatusUpdated):
    """Status of a dataset version."""

    event_type: ClassVar[str] = "llmops.status.dataset_version.updated.v1"
    entity: Literal[StatusEntity.DATASET_VERSION] = Field(description=_ENTITY_DESCRIPTION)
    details: DatasetVersionDetails = Field(default_factory=DatasetVersionDetails)


class DatasetRestoreStatusUpdated(StatusUpdated):
    """Status of a restore of a dataset version to a target (entity id = restore id)."""

    event_type: ClassVar[str] = "llmops.status.dataset_restore.updated.v1"
    entity: Literal[StatusEntity.DATASET_RESTORE] = Field(description=_ENTITY_DESCRIPTION)
    details: DatasetRestoreDetails = Field(default_factory=DatasetRestoreDetails)


class ModelVersionStatusUpdated(StatusUpdated):
    """Status of a registered model version (e.g. synced to GitHub)."""

    event_type: ClassVar[str] = "llmops.status.model_version.updated.v1"
    entity: Literal[StatusEntity.MODEL_VERSION] = Field(description=_ENTITY_DESCRIPTION)
    details: ModelVersionDetails = Field(default_factory=ModelVersionDetails)


class ExperimentRunStatusUpdated(StatusUpdated):
    """Status of an experiment run in tracking (entity id = the tracking run id)."""

    event_type: ClassVar[str] = "llmops.status.experiment_run.updated.v1"
    entity: Literal[StatusEntity.EXPERIMENT_RUN] = Field(description=_ENTITY_DESCRIPTION)
    details: ExperimentRunDetails


STATUS_PAYLOADS: Final[Mapping[StatusEntity, type[StatusUpdated]]] = MappingProxyType(
    {
        StatusEntity.JOB: JobStatusUpdated,
        StatusEntity.DEPLOYMENT: DeploymentStatusUpdated,
        StatusEntity.PIPELINE: PipelineStatusUpdated,
        StatusEntity.MODEL: ModelStatusUpdated,
        StatusEntity.DATASET_VERSION: DatasetVersionStatusUpdated,
        StatusEntity.DATASET_RESTORE: DatasetRestoreStatusUpdated,
        StatusEntity.MODEL_VERSION: ModelVersionStatusUpdated,
        StatusEntity.EXPERIMENT_RUN: ExperimentRunStatusUpdated,
    }
)
"""The payload class of each entity's status event type."""


def status_updated(
    entity: StatusEntity | str,
    *,
    entity_id: str,
    phase: Phase | str,
    reporter: str,
    reason: str | None = None,
    details: ReportDetails | Mapping[str, JsonValue] | None = None,
    seq: int | None = None,
) -> StatusUpdated:
    """Build the status payload for ``entity`` with the right event type.

    ``seq`` defaults to :func:`new_seq`; pass the observation time in nanoseconds instead when
    reporting something observed earlier. ``details`` is the entity's details model (see
    :mod:`llmops_shared.events.payloads.details`), or a mapping validated as one. Raises
    ``ValueError`` for an unknown entity or invalid fields (pydantic's ``ValidationError`` is a
    ``ValueError``).
    """
    kind = StatusEntity(entity)
    return STATUS_PAYLOADS[kind].model_validate(
        {
            "entity": kind,
            "entity_id": entity_id,
            "phase": phase,
            "reason": reason,
            "details": _details_input(details),
            "seq": new_seq() if seq is None else seq,
            "reporter": reporter,
        }
    )


def _details_input(
    details: ReportDetails | Mapping[str, JsonValue] | None,
) -> ReportDetails | dict[str, JsonValue]:
    """A model goes in as it is (one of another entity's class fails validation); a mapping
    is validated as the entity's model."""
    if details is None:
        return {}
    if isinstance(details, ReportDetails):
        return details
    return dict(details)


def clip_reason(text: str | None) -> str | None:
    """``text`` as a valid :data:`Reason`: on one line, at most 2,000 characters, or ``None``.

    Reasons are mostly exception messages and API error bodies (tracebacks, YAML dumps), which
    can be long and span lines; a reason that fails validation would lose the whole report, so
    every reporter clips instead. Whitespace runs (newlines included) collapse to one space, so
    the reason fits a log line; a longer text keeps its start, which names the failure, and ends
    in ``...``. Empty or blank text is ``None`` (a reason is never empty).
    """
    if text is None:
        return None
    flat = " ".join(text.split())
    if not flat:
        return None
    if len(flat) <= REASON_MAX_LENGTH:
        return flat
    return flat[: REASON_MAX_LENGTH - 3] + "..."
