"""Helpers of the gateway's fold tests: a worker's status report, folded the way the status
consumer folds it (encoded, decoded, applied), and rows seeded straight through the models.

Details are always plain dicts in the shape the workers send; what a fold kept is read back
from the read model's rows, never from the report.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import func, select

from llmops_gateway.db.models import (
    Base,
    CatalogDataset,
    CatalogModel,
    DatasetRestore,
    DatasetVersion,
    ExperimentRun,
    RegistryModel,
    ServingDeployment,
    TrainingJob,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.status import apply_status_event
from llmops_shared.events import (
    Event,
    Phase,
    StatusEntity,
    StatusUpdated,
    decode_event,
    encode_event,
    new_event,
    status_updated,
)

RowT = TypeVar("RowT", bound=Base)

SEQ: Final = 1_700_000_000 * 10**9
"""A realistic ``seq`` (wall-clock nanoseconds); tests order reports as ``SEQ + n``."""

CONSUMER: Final = "gateway"


def report(
    entity: StatusEntity,
    entity_id: str,
    phase: Phase,
    seq: int,
    *,
    reason: str | None = None,
    **details: Any,
) -> StatusUpdated:
    """A worker's status report about ``entity_id`` with ``details`` as a plain dict."""
    return status_updated(
        entity,
        entity_id=entity_id,
        phase=phase,
        reporter="tests",
        reason=reason,
        details=details,
        seq=seq,
    )


def event_of(payload: StatusUpdated, *, event_id: str | None = None) -> Event:
    """The event as the status consumer receives it: through the wire format and back."""
    return decode_event(encode_event(new_event(payload, source="tests", event_id=event_id)))


def fold(sessions: SessionFactory, payload: StatusUpdated, *, event_id: str | None = None) -> bool:
    """Fold one report through the public entry; True when the read model changed."""
    return apply_status_event(sessions, event_of(payload, event_id=event_id), consumer=CONSUMER)


def row(sessions: SessionFactory, model: type[RowT], key: str) -> RowT | None:
    """The stored row of ``model`` with primary key ``key`` (None when there is none)."""
    with sessions() as session:
        return session.get(model, key)


def stored(sessions: SessionFactory, model: type[RowT], key: str) -> RowT:
    """The stored row, which must exist."""
    found = row(sessions, model, key)
    assert found is not None, f"no {model.__name__} {key}"
    return found


def count(sessions: SessionFactory, model: type[Base]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def run_of(sessions: SessionFactory, job_id: str) -> ExperimentRun | None:
    """The run record of ``job_id`` (one per job)."""
    with sessions() as session:
        return session.scalars(select(ExperimentRun).where(ExperimentRun.job_id == job_id)).first()


def observed(seq: int) -> datetime:
    """What ``observed_at`` a report at ``seq`` leaves (seq is nanoseconds since the epoch)."""
    return datetime.fromtimestamp(seq / 1e9, UTC)


def new_id() -> str:
    return str(uuid.uuid4())


# ------------------------------------------------------------------------------- seeding


def seed_job(
    sessions: SessionFactory, *, status: str = "Pending", status_seq: int = 0, **columns: Any
) -> str:
    """A training job as the gateway stores a submitted one."""
    job = TrainingJob(
        id=new_id(), spec={}, status=status, status_seq=status_seq, created_at=utcnow(), **columns
    )
    with sessions.begin() as session:
        session.add(job)
    return job.id


def seed_run(
    sessions: SessionFactory,
    job_id: str,
    *,
    backend: str = "builtin",
    status: str = "Running",
    seq: int = SEQ,
    **columns: Any,
) -> str:
    """A run record of ``job_id`` (as a tracking report left it)."""
    values: dict[str, Any] = {
        "run_id": f"builtin-{job_id}",
        "params": {},
        "tags": {},
        "metrics": {},
        "reason": None,
        **columns,
    }
    run = ExperimentRun(
        id=new_id(), job_id=job_id, backend=backend, status=status, seq=seq, **values
    )
    with sessions.begin() as session:
        session.add(run)
    return run.id


def seed_endpoint(sessions: SessionFactory, *, status: str = "Pending", **columns: Any) -> str:
    """A serving endpoint as the gateway stores a created one (no report folded yet)."""
    token = uuid.uuid4().hex[:8]
    endpoint = ServingDeployment(
        id=new_id(),
        environment="dev",
        route=f"/m-{token}",
        endpoint_name=f"m-{token}",
        model_id="model-1",
        model_ref="llama-3-8b-sft-v1",
        spec={},
        status=status,
        created_at=utcnow(),
        **columns,
    )
    with sessions.begin() as session:
        session.add(endpoint)
    return endpoint.id


def seed_model(
    sessions: SessionFactory, *, status: str = "Pending", link: bool = True, **columns: Any
) -> str:
    """A catalog model being imported from the Hub, with its registry link (``link``)."""
    model = CatalogModel(
        id=new_id(),
        name=f"llama-{uuid.uuid4().hex[:8]}",
        source="huggingface",
        status=status,
        verified=False,
        seq=0,
        **columns,
    )
    with sessions.begin() as session:
        session.add(model)
        if link:
            session.add(
                RegistryModel(
                    id=new_id(),
                    catalog_model_id=model.id,
                    registry_kind="huggingface",
                    repo_id="meta-llama/Llama-3-8B",
                    status=status,
                    seq=0,
                    created_at=utcnow(),
                )
            )
    return model.id


def link_of(sessions: SessionFactory, model_id: str) -> RegistryModel:
    with sessions() as session:
        found = session.scalars(
            select(RegistryModel).where(RegistryModel.catalog_model_id == model_id)
        ).one()
    return found


def seed_version(sessions: SessionFactory, *, status: str = "Pending", **columns: Any) -> str:
    """A dataset and one Pending version of it, as ``create_version`` leaves them."""
    dataset = CatalogDataset(
        id=new_id(), name=f"ds-{uuid.uuid4().hex[:8]}", type="sft", storage_uri="s3://data/ds"
    )
    version = DatasetVersion(
        id=new_id(),
        dataset_id=dataset.id,
        version="v1",
        storage_uri="s3://data/ds",
        status=status,
        seq=0,
        created_at=utcnow(),
        **columns,
    )
    with sessions.begin() as session:
        session.add(dataset)
        session.flush()
        session.add(version)
    return version.id


def seed_restore(sessions: SessionFactory) -> str:
    """A Pending restore of a (Succeeded) dataset version."""
    version_id = seed_version(sessions, status="Succeeded")
    restore = DatasetRestore(
        id=new_id(),
        version_id=version_id,
        target_uri="s3://restore/here",
        status="Pending",
        seq=0,
        created_at=utcnow(),
    )
    with sessions.begin() as session:
        session.add(restore)
    return restore.id
