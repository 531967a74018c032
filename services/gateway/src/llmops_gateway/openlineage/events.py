"""A queued row -> the OpenLineage ``RunEvent`` it stands for, read from the database when sent.

Built at send time, not when queued, so that a COMPLETE carries the model version the job
registered even when the pipeline reported it just after the job's end (the emitter holds a
COMPLETE back for that, see :mod:`.emitter`).

Naming (OpenLineage's *Naming* conventions where they apply):

* the **run** is the job: ``runId`` is the job id (a UUID; any other id is mapped to a stable
  UUID, :func:`run_id`);
* the **job** is what the run trains: namespace ``OPENLINEAGE_NAMESPACE``, name the spec's
  ``output.artifact_name`` (runs training the same artifact are runs of one job), else
  ``training-job/<id>``; facet ``jobType`` (BATCH, LLMOPS, TRAINING);
* the **input** is the dataset version the job was pinned to at submission: name the catalog
  dataset's name, namespace ``OPENLINEAGE_DATASET_NAMESPACE`` or else the dataset's storage
  URI's scheme and authority (``s3://bucket``); facets ``version`` (the version tag) and
  ``dataSource`` (where that version's data is). A job without a pinned version (an unknown
  dataset) names the spec's ``dataset_ref`` the same way;
* the **output** (COMPLETE only) is the model version the job registered: name the MLflow
  registered model's name, namespace the MLflow tracking URI (without credentials) or
  ``mlflow``; facets ``version`` and ``dataSource`` (the model's files);
* a FAIL carries the job's reason as the ``errorMessage`` run facet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    RunFacet,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    job_type_job,
)
from sqlalchemy.orm import Session

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.models import CatalogDataset, DatasetVersion, OpenLineageOutbox, TrainingJob
from llmops_gateway.openlineage.record import RunEventType

PRODUCER: Final = "https://github.com/llmops/llmops-integration-plane/gateway"
"""Who wrote the events and their facets (``producer``, ``_producer``)."""

RUN_ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, f"{PRODUCER}/training-job")
"""The UUID namespace a job id that is not a UUID is mapped in (:func:`run_id`)."""

DEFAULT_MODEL_NAMESPACE: Final = "mlflow"

ERROR_LANGUAGE: Final = "unknown"
"""``errorMessage.programmingLanguage``, which the schema requires: a job's reason is the
workflow's message (Argo's, Kubernetes'), not an error raised in one language."""

_STATES: Final = {
    RunEventType.START: RunState.START,
    RunEventType.COMPLETE: RunState.COMPLETE,
    RunEventType.FAIL: RunState.FAIL,
    RunEventType.ABORT: RunState.ABORT,
}

DatasetT = TypeVar("DatasetT", InputDataset, OutputDataset)


@dataclass(frozen=True, slots=True)
class Naming:
    """The namespaces the events use (from the settings)."""

    job_namespace: str
    dataset_namespace: str | None
    model_namespace: str

    @classmethod
    def of(cls, settings: GatewaySettings) -> Naming:
        tracking = settings.mlflow_tracking_uri
        models = public_uri(tracking) if tracking else None
        return cls(
            job_namespace=settings.openlineage_namespace,
            dataset_namespace=settings.openlineage_dataset_namespace,
            model_namespace=models or DEFAULT_MODEL_NAMESPACE,
        )


class JobGone(LookupError):
    """The row's training job is not in the database (nothing to describe)."""


def run_id(job_id: str) -> str:
    """The job id when it is a UUID (the gateway mints UUIDs), else a UUID derived from it."""
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        return str(uuid.uuid5(RUN_ID_NAMESPACE, job_id))


def job_name(job: TrainingJob) -> str:
    """The trained artifact's name, stable across the runs training it; else the job's own."""
    output = job.spec.get("output") if isinstance(job.spec, dict) else None
    name = output.get("artifact_name") if isinstance(output, dict) else None
    return name if isinstance(name, str) and name else f"training-job/{job.id}"


def run_event(session: Session, row: OpenLineageOutbox, naming: Naming) -> RunEvent:
    """The event ``row`` stands for, from what the database holds now; :class:`JobGone` when
    its job is not there."""
    job = session.get(TrainingJob, row.job_id)
    if job is None:
        raise JobGone(f"training job {row.job_id} is not in the database")
    event_type = RunEventType(row.event_type)
    source = _input(session, job, naming)
    output = _output(job, naming) if event_type == RunEventType.COMPLETE else None
    run_facets: dict[str, RunFacet] = {}
    if event_type == RunEventType.FAIL:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=job.reason or "the job failed (no reason was reported)",
            programmingLanguage=ERROR_LANGUAGE,
            producer=PRODUCER,
        )
    job_facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="LLMOPS", jobType="TRAINING", producer=PRODUCER
        )
    }
    return RunEvent(
        eventType=_STATES[event_type],
        eventTime=row.event_time.isoformat(),
        producer=PRODUCER,
        run=Run(runId=run_id(job.id), facets=run_facets),
        job=Job(namespace=naming.job_namespace, name=job_name(job), facets=job_facets),
        inputs=[] if source is None else [source],
        outputs=[] if output is None else [output],
    )


def _input(session: Session, job: TrainingJob, naming: Naming) -> InputDataset | None:
    """The pinned catalog version, else the spec's ``dataset_ref`` (None without either)."""
    version = (
        None
        if job.dataset_version_id is None
        else session.get(DatasetVersion, job.dataset_version_id)
    )
    dataset = None if version is None else session.get(CatalogDataset, version.dataset_id)
    if version is not None and dataset is not None:
        home = dataset.storage_uri or version.storage_uri
        namespace = naming.dataset_namespace or _namespace_of(home) or naming.job_namespace
        where = version.storage_uri or dataset.storage_uri
        return _dataset(InputDataset, namespace, dataset.name, version.version, where)
    ref: Any = job.spec.get("dataset_ref") if isinstance(job.spec, dict) else None
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    where = ref.get("storage_uri")
    namespace = naming.dataset_namespace or _namespace_of(where) or naming.job_namespace
    return _dataset(InputDataset, namespace, str(ref["name"]), ref.get("version"), where)


def _output(job: TrainingJob, naming: Naming) -> OutputDataset | None:
    """The registered model version (None while the job has none)."""
    name, version = job.registered_model_name, job.registered_model_version
    if not name or not version:
        return None
    return _dataset(OutputDataset, naming.model_namespace, name, version, job.model_storage_uri)


def _dataset(
    kind: type[DatasetT], namespace: str, name: str, version: Any, where: str | None
) -> DatasetT:
    facets: dict[str, DatasetFacet] = {}
    if version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(version), producer=PRODUCER
        )
    location = _absolute_uri(where)
    if location is not None:
        facets["dataSource"] = datasource_dataset.DatasourceDatasetFacet(
            name=_namespace_of(location), uri=location, producer=PRODUCER
        )
    return kind(namespace=namespace, name=name, facets=facets)


def _namespace_of(location: str | None) -> str | None:
    """A location's scheme and authority (``s3://bucket``, ``https://host:8080``); ``file`` for
    a local path; None for no location."""
    if not location:
        return None
    parts = urlsplit(location)
    if not parts.scheme or parts.scheme == "file":
        return "file"
    if not parts.hostname:
        return parts.scheme
    return f"{parts.scheme}://{_authority(parts)}"


def _authority(parts: SplitResult) -> str:
    """Host and port, without the user part (an IPv6 address in brackets; a port that is not
    a number is left out rather than failing the event)."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _absolute_uri(location: str | None) -> str | None:
    """``location`` as an absolute URI (a local absolute path as ``file://``), which the
    ``dataSource`` facet's ``uri`` must be; None when it cannot be one."""
    if not location:
        return None
    if urlsplit(location).scheme:
        return public_uri(location)
    return f"file://{location}" if location.startswith("/") else None


def public_uri(uri: str) -> str | None:
    """``uri`` without a user part, query or fragment (None when it has no scheme): what may
    name a namespace or a source in events other tools store and show."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return None
    return urlunsplit((parts.scheme, _authority(parts), parts.path, "", "")).rstrip("/") or None
