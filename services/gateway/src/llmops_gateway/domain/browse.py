"""The console's reads: filtered lists and an entity's timeline, one page at a time.

The API lists are plain pages (``limit``/``offset``); a person browsing wants to narrow them:
jobs by status or model or id, endpoints by environment or status, model versions by name. Each
function is one or two queries (the jobs' page reads an index newest first, by status too;
the status counts are one ``GROUP BY status`` over the status index), and returns plain rows
the templates read. Endpoints outside the environments the caller views are never returned.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import (
    CatalogDataset,
    CatalogModel,
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    StatusHistory,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_gateway.db.session import SessionFactory
from llmops_shared.events import StatusEntity

PAGE: Final = 50
TIMELINE_LIMIT: Final = 500
"""The most recent reports an entity page shows (older ones stay in the table)."""


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to; empty strings count as unset (a form sends them)."""

    status: str = ""
    text: str = ""
    model: str = ""
    environment: str = ""
    offset: int = 0


T = TypeVar("T")


@dataclass
class Listing(Generic[T]):
    """One page of rows, the filters that made it, and how many rows each status has."""

    rows: Sequence[T]
    filters: Filters
    has_more: bool
    status_counts: dict[str, int] = field(default_factory=dict)


def _page(session: Session, query: Select[Any], filters: Filters) -> tuple[list[Any], bool]:
    rows = list(session.scalars(query.offset(filters.offset).limit(PAGE + 1)))
    return rows[:PAGE], len(rows) > PAGE


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def training_jobs(sessions: SessionFactory, filters: Filters) -> Listing[TrainingJob]:
    """Jobs newest first, by status, base model and id or artifact name."""
    query = select(TrainingJob)
    if filters.status:
        query = query.where(TrainingJob.status == filters.status)
    if filters.model:
        query = query.where(TrainingJob.model_id == filters.model)
    if filters.text:
        query = query.where(
            or_(
                TrainingJob.id.startswith(filters.text, autoescape=True),
                TrainingJob.registered_model_name.like(_like(filters.text), escape="\\"),
            )
        )
    with sessions() as session:
        rows, more = _page(
            session, query.order_by(TrainingJob.created_at.desc(), TrainingJob.id.desc()), filters
        )
        counts = session.execute(
            select(TrainingJob.status, func.count()).group_by(TrainingJob.status)
        ).all()
    return Listing(rows, filters, more, {status: count for status, count in counts})


def endpoints(
    sessions: SessionFactory, filters: Filters, environments: Collection[str]
) -> Listing[ServingDeployment]:
    """Endpoints newest first, in the environments the caller views."""
    shown = set(environments)
    if filters.environment:
        shown &= {filters.environment}
    query = select(ServingDeployment).where(ServingDeployment.environment.in_(sorted(shown)))
    if filters.status:
        query = query.where(ServingDeployment.status == filters.status)
    if filters.text:
        query = query.where(ServingDeployment.endpoint_name.like(_like(filters.text), escape="\\"))
    with sessions() as session:
        rows, more = _page(session, query.order_by(ServingDeployment.created_at.desc()), filters)
    return Listing(rows, filters, more)


@dataclass(frozen=True)
class DatasetRow:
    dataset: CatalogDataset
    versions: Sequence[DatasetVersion]


def datasets(sessions: SessionFactory, filters: Filters) -> Listing[DatasetRow]:
    """Datasets newest first, each with its versions (newest first)."""
    query = select(CatalogDataset)
    if filters.text:
        query = query.where(CatalogDataset.name.like(_like(filters.text), escape="\\"))
    with sessions() as session:
        rows, more = _page(session, query.order_by(CatalogDataset.created_at.desc()), filters)
        versions = session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id.in_([row.id for row in rows]))
            .order_by(DatasetVersion.created_at.desc())
        ).all()
    by_dataset: dict[str, list[DatasetVersion]] = {}
    for version in versions:
        by_dataset.setdefault(version.dataset_id, []).append(version)
    return Listing([DatasetRow(row, by_dataset.get(row.id, [])) for row in rows], filters, more)


def catalog_models(sessions: SessionFactory, filters: Filters) -> Listing[CatalogModel]:
    query = select(CatalogModel)
    if filters.status:
        query = query.where(CatalogModel.status == filters.status)
    if filters.text:
        query = query.where(CatalogModel.name.like(_like(filters.text), escape="\\"))
    with sessions() as session:
        rows, more = _page(session, query.order_by(CatalogModel.created_at.desc()), filters)
    return Listing(rows, filters, more)


def model_versions(sessions: SessionFactory, filters: Filters) -> Listing[ModelVersion]:
    query = select(ModelVersion)
    if filters.status:
        query = query.where(ModelVersion.status == filters.status)
    if filters.text:
        query = query.where(ModelVersion.name.like(_like(filters.text), escape="\\"))
    with sessions() as session:
        rows, more = _page(session, query.order_by(ModelVersion.updated_at.desc()), filters)
    return Listing(rows, filters, more)


# ------------------------------------------------------------------ a training job's page


@dataclass(frozen=True)
class Subject:
    """The status entities whose reports make a job's timeline: the job, its pipeline(s) and
    its experiment run(s)."""

    pairs: frozenset[tuple[str, str]]

    def covers(self, entity: str, entity_id: str) -> bool:
        return (entity, entity_id) in self.pairs


@dataclass
class JobPage:
    job: TrainingJob
    pipeline: WorkflowPipeline | None
    run: ExperimentRun | None
    dataset_version: DatasetVersion | None
    dataset: CatalogDataset | None
    subject: Subject
    timeline: Sequence[StatusHistory]


def job_subject(
    job_id: str, pipeline: WorkflowPipeline | None, run: ExperimentRun | None
) -> Subject:
    """The pipeline of a job that has none yet will be ``train-<id>`` (the workflow worker's
    name), so its first report is already on the page."""
    pairs = {(StatusEntity.JOB.value, job_id), (StatusEntity.PIPELINE.value, f"train-{job_id}")}
    if pipeline is not None:
        pairs.add((StatusEntity.PIPELINE.value, pipeline.workflow_name))
    if run is not None:
        pairs.add((StatusEntity.EXPERIMENT_RUN.value, run.run_id))
    return Subject(frozenset(pairs))


def job_page(
    sessions: SessionFactory, job_id: str, *, with_timeline: bool = True
) -> JobPage | None:
    """Everything a job's page shows but its lineage; None for an unknown job. The live
    page's panel refresh (after each report) needs no ``timeline``: it is left empty."""
    with sessions() as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            return None
        pipeline = session.scalars(
            select(WorkflowPipeline)
            .where(WorkflowPipeline.job_id == job_id)
            .order_by(WorkflowPipeline.created_at.desc())
        ).first()
        run = session.scalars(select(ExperimentRun).where(ExperimentRun.job_id == job_id)).first()
        version = (
            session.get(DatasetVersion, job.dataset_version_id) if job.dataset_version_id else None
        )
        dataset = session.get(CatalogDataset, version.dataset_id) if version else None
        subject = job_subject(job_id, pipeline, run)
        timeline = history(session, subject) if with_timeline else []
    return JobPage(job, pipeline, run, version, dataset, subject, timeline)


def history(
    session: Session, subject: Subject, after: int | None = None, since: datetime | None = None
) -> Sequence[StatusHistory]:
    """The subject's reports in the order folded. Without ``after``: the newest
    :data:`TIMELINE_LIMIT` (a page's first render). With it: the oldest of those after row id
    ``after``, and also those recorded since ``since`` whatever their id (a live page's poll:
    ids are taken at insert and committed in any order across gateway replicas, so a row with
    a smaller id can appear after a larger one was sent)."""
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in subject.pairs:
        by_entity.setdefault(entity, []).append(entity_id)
    matches = [
        (StatusHistory.entity == entity) & StatusHistory.entity_id.in_(sorted(ids))
        for entity, ids in by_entity.items()
    ]
    query = select(StatusHistory).where(or_(*matches))
    if after is None:
        newest = query.order_by(StatusHistory.id.desc()).limit(TIMELINE_LIMIT)
        return list(reversed(session.scalars(newest).all()))
    later = StatusHistory.id > after
    if since is not None:
        later = or_(later, StatusHistory.recorded_at >= since)
    return session.scalars(
        query.where(later).order_by(StatusHistory.id).limit(TIMELINE_LIMIT)
    ).all()


def entity_history(
    sessions: SessionFactory,
    subject: Subject,
    after: int | None = None,
    since: datetime | None = None,
) -> Sequence[StatusHistory]:
    with sessions() as session:
        return history(session, subject, after, since)


HistoryAfter = Callable[[int, datetime], Sequence[StatusHistory]]
"""The subject's rows after an id, and those recorded since a time (blocking)."""


def history_reader(sessions: SessionFactory, subject_of: Callable[[], Subject]) -> HistoryAfter:
    """What a live page polls: the rows of the subject as it is at each poll (a job's run
    appears after its page was opened)."""

    def read(after: int, since: datetime) -> Sequence[StatusHistory]:
        return entity_history(sessions, subject_of(), after, since)

    return read


def job_subject_now(sessions: SessionFactory, job_id: str) -> Subject:
    """A job's timeline subject as it is now (two small reads: its pipelines and runs)."""
    with sessions() as session:
        pipelines = session.scalars(
            select(WorkflowPipeline.workflow_name).where(WorkflowPipeline.job_id == job_id)
        ).all()
        runs = session.scalars(
            select(ExperimentRun.run_id).where(ExperimentRun.job_id == job_id)
        ).all()
    pairs = set(job_subject(job_id, None, None).pairs)
    pairs |= {(StatusEntity.PIPELINE.value, name) for name in pipelines}
    pairs |= {(StatusEntity.EXPERIMENT_RUN.value, run_id) for run_id in runs}
    return Subject(frozenset(pairs))


def dataset_version(
    sessions: SessionFactory, version_id: str
) -> tuple[DatasetVersion, CatalogDataset | None] | None:
    with sessions() as session:
        version = session.get(DatasetVersion, version_id)
        if version is None:
            return None
        return version, session.get(CatalogDataset, version.dataset_id)


def model_version(sessions: SessionFactory, key: str) -> ModelVersion | None:
    """github-sync's record of ``<name>/<version>`` (None before it reported)."""
    with sessions() as session:
        return session.get(ModelVersion, key)
