"""The tables the integration quickstart's database migrations create: what the workers report,
and the run-time flags.

Split out of :mod:`llmops_gateway.db.models` (now a package): tracking runs, serving endpoints,
pipelines, registry links, dataset versions and restores, and the integration configs, apart
from the gateway's own entities (:mod:`llmops_gateway.db.models.entities`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from llmops_gateway.db.models.base import Base, Timestamped, utcnow


class ExperimentRun(Timestamped, Base):
    """The tracking run of a training job (MLflow or the built-in tracker), one per job."""

    __tablename__ = "experiment_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[str] = mapped_column(String(256), index=True)
    experiment_id: Mapped[str | None] = mapped_column(String(256))
    experiment_name: Mapped[str | None] = mapped_column(String(256))
    backend: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    tracking_url: Mapped[str | None] = mapped_column(String(2048))
    params: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    seq: Mapped[int] = mapped_column(BigInteger)


class ServingDeployment(Timestamped, Base):
    """A serving endpoint (KServe InferenceService, the built-in Deployment, or manifests).

    ``endpoint_name`` (the InferenceService name) and ``route`` are unique per environment:
    each environment deploys into its own namespace, so the same name or route may exist once
    in dev and once in prod. A row lives until the serving worker reports the cluster resource
    gone (phase Deleted after a DELETE), so a name or route is never handed out again while
    its old resource still exists.

    ``status`` is the endpoint's lifecycle as clients see it: the reported phase (Pending,
    Ready, Failed, Degraded), or Deleting / DeleteFailed once a delete was requested.
    The ``reported_*``, ``manifest`` ... ``observed_at`` columns are the last deployment report
    (``GET .../deployment``); ``observed_at`` is null until the first one.
    """

    __tablename__ = "serving_deployments"
    __table_args__ = (
        UniqueConstraint("environment", "endpoint_name"),
        UniqueConstraint("environment", "route"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(255))
    endpoint_name: Mapped[str] = mapped_column(String(63))
    model_id: Mapped[str] = mapped_column(String(64))
    model_ref: Mapped[str] = mapped_column(String(256))
    spec: Mapped[dict[str, Any]]
    storage_uri: Mapped[str | None] = mapped_column(String(2048), index=True)
    """The artifact the endpoint was asked to serve (the producing job's registered model);
    null: the serving worker's template resolves ``model_ref``."""
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(256))
    rollout_action: Mapped[str | None] = mapped_column(String(32))
    delete_requested_at: Mapped[datetime | None]
    # the last deployment report
    reported_phase: Mapped[str | None] = mapped_column(String(32))
    reported_reason: Mapped[str | None] = mapped_column(Text)
    namespace: Mapped[str | None] = mapped_column(String(63))
    backend: Mapped[str | None] = mapped_column(String(32))
    deployment_mode: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any] | None]
    conditions: Mapped[list[Any] | None] = mapped_column(JSON)
    traffic: Mapped[list[Any] | None] = mapped_column(JSON)
    rollout: Mapped[dict[str, Any] | None]
    serve_url: Mapped[str | None] = mapped_column(String(2048))
    observed_at: Mapped[datetime | None]
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    violations: Mapped[list[Any] | None] = mapped_column(JSON)
    """Rules the stored spec breaks today (``validate serving-endpoints --mark``)."""
    validated_at: Mapped[datetime | None]


class WorkflowPipeline(Timestamped, Base):
    """An orchestrated pipeline run (Argo Workflow, built-in Jobs or rendered manifests) of a
    training job, as the workflow worker last reported it.

    Rows are created by the first ``llmops.status.pipeline.updated.v1`` report (entity id = the
    workflow name, unique) and only ever changed by later reports, ordered by ``seq``.
    ``status`` / ``reason`` are the reported phase and its message; ``progress_*``, ``nodes``,
    ``manifest`` and the timestamps keep their stored value when a report omits them.
    ``observed_at`` is the last applied report's ``seq`` as a time.
    """

    __tablename__ = "workflow_pipelines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_name: Mapped[str] = mapped_column(String(253), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    namespace: Mapped[str | None] = mapped_column(String(63))
    backend: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    nodes: Mapped[list[Any] | None] = mapped_column(JSON)
    manifest: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    observed_at: Mapped[datetime | None]
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class RegistryModel(Timestamped, Base):
    """A link between a catalog model and an external registry (Hugging Face Hub...).

    ``revision`` is what the import asked for (a branch, tag or commit; null = default branch),
    ``resolved_revision`` the commit sha the catalog entry is pinned to. The ``upstream_*``
    columns are the last check-updates answer, ordered by ``check_seq``.
    """

    __tablename__ = "registry_models"
    __table_args__ = (UniqueConstraint("registry_kind", "repo_id", "revision"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    catalog_model_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("catalog_models.id", ondelete="SET NULL")
    )
    registry_kind: Mapped[str] = mapped_column(String(32))  # huggingface, manual...
    repo_id: Mapped[str] = mapped_column(String(256))
    revision: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved_revision: Mapped[str | None] = mapped_column(String(256))
    url: Mapped[str | None] = mapped_column(String(2048))
    last_synced_at: Mapped[datetime | None]
    upstream_revision: Mapped[str | None] = mapped_column(String(256))
    upstream_checked_at: Mapped[datetime | None]
    update_available: Mapped[bool | None] = mapped_column(Boolean)
    check_error: Mapped[str | None] = mapped_column(Text)
    check_seq: Mapped[int | None] = mapped_column(BigInteger)


class DatasetVersion(Timestamped, Base):
    """A pinned version of a catalog dataset (a DVC tag, or a content-hash manifest).

    ``version`` is the version tag (unique per dataset). The versioning worker's reports fill
    in the rest; ``files`` is the manifest (``[path, md5, size]`` triples, sorted by path) that
    diffs are computed from, so a diff never touches the data.
    """

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("catalog_datasets.id", ondelete="CASCADE")
    )
    version: Mapped[str] = mapped_column(String(128))
    storage_uri: Mapped[str | None] = mapped_column(String(2048))
    system: Mapped[str | None] = mapped_column(String(32))
    revision: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    parent_version_id: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(128))
    tag: Mapped[str | None] = mapped_column(String(256))
    remote_uri: Mapped[str | None] = mapped_column(String(2048))
    file_count: Mapped[int | None] = mapped_column(Integer)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    files: Mapped[list[Any] | None] = mapped_column(JSON)
    progress: Mapped[dict[str, Any] | None]
    correlation_id: Mapped[str | None] = mapped_column(String(256))


class DatasetRestore(Timestamped, Base):
    """A request to materialise a dataset version at a target URI, and how it went."""

    __tablename__ = "dataset_restores"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    target_uri: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    files_done: Mapped[int | None] = mapped_column(Integer)
    files_total: Mapped[int | None] = mapped_column(Integer)
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class IntegrationConfig(Base):
    """The run-time flag of one integration area in one environment (the integration
    quickstart's ``integration_configs`` table): it overrides the workers' ``<AREA>_ENABLED``
    feature flags.

    ``revision`` counts the row's changes from 1; every change is also an
    ``IntegrationConfigChanged`` event on ``llmops.config`` with that revision, published
    through the outbox in the same transaction, which is how workers learn of it. ``config``
    holds area-specific options (none are defined yet).
    """

    __tablename__ = "integration_configs"
    __table_args__ = (UniqueConstraint("area", "environment"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    area: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean)
    system: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer)
    changed_by: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
