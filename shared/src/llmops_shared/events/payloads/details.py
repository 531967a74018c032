"""The typed ``details`` of every status event: one model per entity, built by the reporter.

Before these models, ``details`` was a free JSON object: each worker wrote its dict by hand and
the gateway re-parsed it by string keys. Now the reporter builds the model, :func:`decode_event`
validates it with the rest of the payload (a malformed fact dead-letters the report with the
field that failed, before anything is folded), the gateway reads typed fields, and the JSON
Schemas under ``docs/events/`` show every fact.

The wire stays what it was (``llmops.status.*.updated.v1``), so an older gateway folds a newer
worker's reports and the other way round:

* every fact is optional (a report says what its reporter observed; the gateway keeps the
  stored value of a missing or null fact), except where a fold cannot work without it;
* a fact the reporter did not set is left out of the JSON, not written as ``null``
  (``exclude_unset`` semantics, see :meth:`ReportDetails._reported_only`): the folds tell
  "missing" from "null" in places (a rollout that names its strategy replaces the stored one);
* unknown keys are ignored, so a newer reporter can add facts without breaking a consumer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from llmops_shared.events.fields import Name
from llmops_shared.events.payloads.catalog import ImportedModel, ImportProgress, UpstreamCheck
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts, VersionProgress
from llmops_shared.events.payloads.training import RegisteredModel

MAX_INT32: Final = 2**31 - 1
"""Counters the gateway stores in plain INTEGER columns."""

JsonObject = dict[str, JsonValue]


class _Fact(BaseModel):
    """A nested fact: unknown keys are ignored so a newer reporter can add to it."""

    model_config = ConfigDict(extra="ignore")


class ReportDetails(_Fact):
    """Base of every entity's details: what the reporter set, and nothing else, goes out."""

    model_config = ConfigDict(extra="ignore", serialize_by_alias=True, validate_by_name=True)

    @model_serializer(mode="wrap")
    def _reported_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        # by alias or by name, whichever the dump used (``from`` or ``source``)
        reported = {*self.model_fields_set, *(fields[n].alias for n in self.model_fields_set)}
        return {key: value for key, value in data.items() if key in reported}


def _as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive time from a reporter is taken as UTC (what Kubernetes reports)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A reported time, aware and in UTC."""


class JobDetails(ReportDetails):
    """``llmops.status.job.updated.v1``: a job's own reports carry no facts (its pipeline's and
    its run's do); the phase and reason are the report."""


# ---------------------------------------------------------------- deployment


class TrafficTarget(ReportDetails):
    """One entry of a deployment's traffic split, as the serving platform reports it (``tag``
    only where the platform has one)."""

    revision: str | None = None
    percent: int | None = None
    latest: bool | None = None
    tag: str | None = None


class RolloutState(_Fact):
    """The endpoint's rollout: a report that names the strategy describes the whole rollout
    (a promoted canary has no percent left); one without it only adds to the stored one."""

    strategy: str | None = None
    canary_percent: int | None = None


class FormatMove(ReportDetails):
    """A move of an endpoint between a KServe InferenceService and the built-in Deployment +
    Service (``kserve`` / ``builtin``)."""

    outcome: str | None = Field(
        default=None,
        description="in_progress (the new object is applied, the old one still serves), "
        "migrated (the new one is Ready and the old one removed) or failed (refused, or the "
        "new object failed: the old one keeps serving).",
    )
    source: str | None = Field(default=None, alias="from", description="The format left.")
    target: str | None = Field(default=None, description="The format moved to.")
    reason: str | None = None


class DeploymentDetails(ReportDetails):
    """``llmops.status.deployment.updated.v1`` (entity id = endpoint id): the gateway folds
    these into the endpoint record field for field (docs/serving.md)."""

    name: str | None = Field(default=None, description="The endpoint's resource name.")
    namespace: str | None = None
    backend: str | None = Field(
        default=None, description="Which backend observed it: kserve or deployment."
    )
    deployment_mode: str | None = Field(
        default=None, description="KServe's deployment mode (Serverless, RawDeployment...)."
    )
    manifest: JsonObject | None = Field(
        default=None, description="The object applied (an InferenceService, or a List)."
    )
    url: str | None = Field(default=None, description="Where the endpoint answers.")
    conditions: list[JsonObject] | None = Field(
        default=None, description="The resource's status conditions, as Kubernetes reports them."
    )
    traffic: list[TrafficTarget] | None = None
    rollout: RolloutState | None = None
    migration: FormatMove | None = Field(
        default=None, description="Only on reports about a move between formats."
    )


# ---------------------------------------------------------------- pipeline


class PipelineProgress(_Fact):
    """Finished steps out of all steps; ``0/0`` means "not observed yet"."""

    done: int | None = Field(default=None, ge=0, le=MAX_INT32)
    total: int | None = Field(default=None, ge=0, le=MAX_INT32)


class PipelineNode(_Fact):
    """One step of the workflow (an Argo node, a Job, a local stage)."""

    name: str | None = None
    phase: str | None = None
    started_at: UtcTime | None = None
    finished_at: UtcTime | None = None
    message: str | None = None


class PipelineDetails(ReportDetails):
    """``llmops.status.pipeline.updated.v1`` (entity id = workflow name ``train-<job id>``).
    An empty string counts as missing."""

    job_id: str | None = Field(default=None, max_length=64)
    workflow_name: str | None = None
    namespace: str | None = Field(default=None, max_length=63)
    backend: str | None = Field(
        default=None, max_length=32, description="argo, job, local or manifests."
    )
    progress: PipelineProgress | None = None
    nodes: list[PipelineNode] | None = None
    started_at: UtcTime | None = None
    finished_at: UtcTime | None = None
    manifest: JsonObject | None = Field(default=None, description="The workflow applied.")
    registered_model: RegisteredModel | None = Field(
        default=None, description="The model version the register stage created, once it has."
    )

    @field_validator("job_id", "namespace", "backend", "started_at", "finished_at", mode="before")
    @classmethod
    def _empty_is_missing(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


# ---------------------------------------------------------------- experiment run


class RunMove(ReportDetails):
    """A move of a built-in run record to a tracking system (``migrate experiments``)."""

    outcome: str | None = Field(
        default=None, description="migrated, or failed (the record stays built-in)."
    )
    source: str | None = Field(default=None, alias="from", description="Where the record was.")
    target: str | None = None
    run_status: str | None = None
    reason: str | None = None
    request_id: str | None = Field(
        default=None, description="The request's event id, on a failure: which request failed."
    )


class ExperimentRunDetails(ReportDetails):
    """``llmops.status.experiment_run.updated.v1`` (entity id = the tracking run id): the
    gateway's run record, field for field; params, tags and metrics are merged into it."""

    job_id: Name = Field(description="The training job the run belongs to.")
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_url: str | None = Field(default=None, description="The run's page in the tracking UI.")
    backend: str | None = Field(default=None, description="mlflow or builtin.")
    params: JsonObject | None = None
    tags: JsonObject | None = None
    metrics: JsonObject | None = None
    migration: RunMove | None = None


# ---------------------------------------------------------------- catalog and datasets


class ModelDetails(ReportDetails):
    """``llmops.status.model.updated.v1`` (entity id = catalog model id)."""

    model: ImportedModel | None = Field(default=None, description="On an import's Succeeded.")
    progress: ImportProgress | None = Field(default=None, description="While importing.")
    upstream: UpstreamCheck | None = Field(
        default=None, description="The answer to a check-updates request."
    )


class DatasetVersionDetails(ReportDetails):
    """``llmops.status.dataset_version.updated.v1`` (entity id = version id)."""

    backend: str | None = Field(default=None, description="dvc or builtin.")
    version: VersionFacts | None = Field(default=None, description="On Succeeded.")
    progress: VersionProgress | None = Field(default=None, description="While Running.")


class DatasetRestoreDetails(ReportDetails):
    """``llmops.status.dataset_restore.updated.v1`` (entity id = restore id)."""

    backend: str | None = Field(default=None, description="dvc or builtin.")
    restore: RestoreFacts | None = None


# ---------------------------------------------------------------- model version


class ModelVersionDetails(ReportDetails):
    """``llmops.status.model_version.updated.v1`` (entity id = ``<model>/<version>``): what
    github-sync did with the version's Helm values."""

    path: str | None = Field(default=None, description="The values file in the repository.")
    action: str | None = Field(
        default=None, description="created, updated, regenerated, unchanged or skipped."
    )
    commit: str | None = Field(default=None, description="The commit that wrote the file.")
    backend: str | None = Field(default=None, description="github, git or builtin.")
    pull_request: str | None = Field(default=None, description="The PR opened, if any.")
    max_model_len: int | None = None
    capped: bool | None = Field(
        default=None, description="Whether max_model_len was capped to the serving limit."
    )
