"""The versioning handlers against an in-memory backend: versions and restores, their one
final report, progress while working, failures, and one task per dataset at a time (the DVC
and built-in backends have their own tests)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetRestoreStatusUpdated,
    DatasetVersionRequested,
    DatasetVersionStatusUpdated,
    Envelope,
    Event,
    ModelUpdateCheckRequested,
    Phase,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.specs import DatasetType
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import Progress, VersioningFailed, VersioningPorts, VersionRequest

from support.fakes.sink import RecordingSink
from support.fakes.versioning import FakeVersioning

pytestmark = pytest.mark.unit

CORRELATION_ID = "req-versioning-unit"
DATA_URI = "s3://datasets/instructions/v1"
FILES = {"train.jsonl": 300, "eval/part-0.jsonl": 50}
HASHING = [
    Progress(stage="fetching", files_total=2),
    Progress(stage="hashing", files_done=1, files_total=2, bytes_done=300, bytes_total=350),
    Progress(stage="hashing", files_done=2, files_total=2, bytes_done=350, bytes_total=350),
    Progress(stage="pushing", files_done=2, files_total=2),
]


def new_id() -> str:
    return str(uuid.uuid4())


def received(envelope: Envelope) -> Event:
    return decode_event(encode_event(envelope))


def version_requested(
    dataset_id: str,
    version_id: str | None = None,
    tag: str = "v1",
    *,
    storage_uri: str = DATA_URI,
    parent_version_id: str | None = None,
) -> Event:
    payload = DatasetVersionRequested(
        dataset_id=dataset_id,
        version_id=version_id or new_id(),
        version_tag=tag,
        dataset_type=DatasetType.SFT_PAIR,
        storage_uri=storage_uri,
        parent_version_id=parent_version_id,
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def restore_requested(dataset_id: str, version_id: str, tag: str = "v1") -> Event:
    payload = DatasetRestoreRequested(
        restore_id=new_id(),
        dataset_id=dataset_id,
        version_id=version_id,
        version_tag=tag,
        target_uri="/restores/out",
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def decoded(envelope: Envelope) -> Event:
    event = received(envelope)
    assert event.envelope.source == "versioning"
    assert event.envelope.correlationid == CORRELATION_ID
    return event


async def version_report(event: Event, ports: VersioningPorts) -> DatasetVersionStatusUpdated:
    [envelope] = await handle_datasets_event(event, ports)
    status = decoded(envelope).payload_as(DatasetVersionStatusUpdated)
    assert status.entity is StatusEntity.DATASET_VERSION
    assert status.entity_id == event.payload_as(DatasetVersionRequested).version_id
    assert status.reporter == "versioning"
    return status


async def restore_report(event: Event, ports: VersioningPorts) -> DatasetRestoreStatusUpdated:
    [envelope] = await handle_datasets_event(event, ports)
    status = decoded(envelope).payload_as(DatasetRestoreStatusUpdated)
    assert status.entity is StatusEntity.DATASET_RESTORE
    assert status.entity_id == event.payload_as(DatasetRestoreRequested).restore_id
    return status


@pytest.fixture
def backend() -> FakeVersioning:
    return FakeVersioning(backend_name="dvc", data={DATA_URI: dict(FILES)})


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def ports(backend: FakeVersioning, sink: RecordingSink) -> VersioningPorts:
    return VersioningPorts(backend=backend, sink=sink, progress_interval_s=0)


# ------------------------------------------------------------------------------ versions


async def test_a_version_is_recorded_and_reported_with_its_facts(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    dataset_id, parent = new_id(), new_id()
    event = version_requested(dataset_id, parent_version_id=parent)
    status = await version_report(event, ports)

    [request] = backend.calls
    payload = event.payload_as(DatasetVersionRequested)
    assert (request.dataset_id, request.version_id) == (dataset_id, payload.version_id)
    assert status.phase is Phase.SUCCEEDED
    assert status.reason is None
    facts = status.details.version
    assert facts is not None
    assert facts == backend.versions[(dataset_id, "v1")][1]
    assert (facts.backend, facts.file_count, facts.total_bytes) == ("dvc", 2, 350)
    assert facts.parent_version_id == parent
    assert [path for path, _, _ in facts.files] == ["eval/part-0.jsonl", "train.jsonl"]
    assert status.details.progress is None


async def test_the_version_request_carries_the_events_fields(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    event = version_requested(new_id(), tag="2024.06-rc1")
    await version_report(event, ports)

    payload = event.payload_as(DatasetVersionRequested)
    [request] = backend.calls
    assert isinstance(request, VersionRequest)
    assert request.version_tag == "2024.06-rc1"
    assert request.dataset_type == "sft_pair"
    assert request.storage_uri == DATA_URI
    assert request.parent_version_id is None
    assert request.version_id == payload.version_id


async def test_a_redelivered_version_is_reported_again_unchanged(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    event = version_requested(new_id())
    first = await version_report(event, ports)
    second = await version_report(event, ports)

    assert second.phase is Phase.SUCCEEDED
    assert second.details.version == first.details.version
    assert len(backend.versions) == 1


async def test_a_tag_taken_by_another_version_fails(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    dataset_id = new_id()
    first = await version_report(version_requested(dataset_id, tag="v1"), ports)
    status = await version_report(version_requested(dataset_id, tag="v1"), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == f"tag v1 is already version {first.entity_id}"
    assert status.details.backend == "dvc"
    assert status.details.version is None


async def test_a_backend_failure_is_the_failed_reason(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    status = await version_report(
        version_requested(new_id(), storage_uri="s3://datasets/missing"), ports
    )
    assert status.phase is Phase.FAILED
    assert status.reason == "no data at s3://datasets/missing"
    assert status.details.backend == "dvc"


async def test_an_unexpected_error_still_ends_the_version_failed(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    backend.fail["create_version"] = ValueError("data.dvc is\nnot YAML")
    status = await version_report(version_requested(new_id(), tag="v7"), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == "version v7 failed unexpectedly: ValueError: data.dvc is not YAML"
    assert status.details.backend == "dvc"


async def test_a_long_failure_reason_is_clipped(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    backend.fail["create_version"] = VersioningFailed("dvc push failed:\n" + "e" * 5000)
    status = await version_report(version_requested(new_id()), ports)

    assert status.reason is not None
    assert status.reason.startswith("dvc push failed: eee")
    assert len(status.reason) <= 2000


async def test_a_cancelled_version_propagates(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    backend.fail["create_version"] = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await handle_datasets_event(version_requested(new_id()), ports)


async def test_version_progress_is_published_while_running(
    backend: FakeVersioning, sink: RecordingSink, ports: VersioningPorts
) -> None:
    backend.progress = [*HASHING, Progress(stage="restoring")]  # not a version's stage
    event = version_requested(new_id())
    final = await version_report(event, ports)

    reports = [e.payload_as(DatasetVersionStatusUpdated) for e in sink.events]
    assert all(e.envelope.correlationid == CORRELATION_ID for e in sink.events)
    assert all(r.phase is Phase.RUNNING and r.entity_id == final.entity_id for r in reports)
    assert all(r.details.backend == "dvc" for r in reports)
    progress = [r.details.progress for r in reports]
    assert [(p.stage, p.files_done, p.bytes_done) for p in progress if p] == [
        ("fetching", 0, 0),
        ("hashing", 1, 300),
        ("hashing", 2, 350),
        ("pushing", 2, 0),
    ]
    assert max(r.seq for r in reports) < final.seq


async def test_version_progress_is_throttled_per_stage(backend: FakeVersioning) -> None:
    sink = RecordingSink()
    backend.progress = HASHING
    ports = VersioningPorts(backend=backend, sink=sink, progress_interval_s=3600)
    await version_report(version_requested(new_id()), ports)

    stages = [e.payload_as(DatasetVersionStatusUpdated).details.progress for e in sink.events]
    assert [p.stage for p in stages if p] == ["fetching", "hashing", "pushing"]


async def test_progress_of_a_failed_version_precedes_its_failure(
    backend: FakeVersioning, sink: RecordingSink, ports: VersioningPorts
) -> None:
    backend.progress = HASHING
    backend.fail["create_version"] = VersioningFailed("remote unreachable")
    final = await version_report(version_requested(new_id()), ports)

    assert final.phase is Phase.FAILED
    assert len(sink.published) == 4
    assert max(e.payload_as(DatasetVersionStatusUpdated).seq for e in sink.events) < final.seq


# ------------------------------------------------------------------------------ restores


async def test_a_restore_writes_the_version_and_reports_the_counts(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    dataset_id = new_id()
    version = await version_report(version_requested(dataset_id), ports)

    status = await restore_report(restore_requested(dataset_id, version.entity_id), ports)
    assert backend.restored == {"/restores/out": FILES}
    assert status.phase is Phase.SUCCEEDED
    assert status.reason is None
    facts = status.details.restore
    assert facts is not None
    assert (facts.version_id, facts.target_uri) == (version.entity_id, "/restores/out")
    assert (facts.files_done, facts.files_total, facts.bytes_done, facts.bytes_total) == (
        2,
        2,
        350,
        350,
    )


async def test_a_restore_of_an_unknown_version_fails_with_its_target(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    version_id = new_id()
    status = await restore_report(restore_requested(new_id(), version_id, "v9"), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == "version v9 is not recorded"
    facts = status.details.restore
    assert facts is not None
    assert (facts.version_id, facts.target_uri, facts.files_done) == (
        version_id,
        "/restores/out",
        0,
    )
    assert backend.restored == {}


async def test_an_unexpected_restore_error_still_ends_failed(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    backend.fail["restore"] = OSError("disk full")
    status = await restore_report(restore_requested(new_id(), new_id(), "v3"), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == "restore of version v3 failed unexpectedly: OSError: disk full"


async def test_restore_progress_is_published_as_restore_facts(
    backend: FakeVersioning, sink: RecordingSink, ports: VersioningPorts
) -> None:
    dataset_id = new_id()
    version = await version_report(version_requested(dataset_id), ports)
    backend.progress = [
        Progress(stage="restoring", files_done=1, files_total=2, bytes_done=300, bytes_total=350)
    ]
    final = await restore_report(restore_requested(dataset_id, version.entity_id), ports)

    [running] = [e.payload_as(DatasetRestoreStatusUpdated) for e in sink.events]
    assert running.phase is Phase.RUNNING
    assert running.entity_id == final.entity_id
    assert running.details.restore is not None
    assert (running.details.restore.files_done, running.details.restore.bytes_done) == (1, 300)
    assert running.details.restore.version_id == version.entity_id
    assert running.seq < final.seq


# ------------------------------------------------------------------------------ locks


async def test_work_on_one_dataset_is_serialized(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    dataset_id = new_id()
    backend.gate = asyncio.Event()
    first = asyncio.create_task(handle_datasets_event(version_requested(dataset_id), ports))
    second = asyncio.create_task(
        handle_datasets_event(version_requested(dataset_id, tag="v2"), ports)
    )
    await asyncio.sleep(0.01)
    assert backend.active[dataset_id] == 1  # the second waits for the dataset's lock
    backend.gate.set()
    await asyncio.gather(first, second)
    assert backend.peak[dataset_id] == 1
    assert len(backend.versions) == 2


async def test_work_on_different_datasets_runs_concurrently(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    one, two = new_id(), new_id()
    backend.gate = asyncio.Event()
    tasks = [
        asyncio.create_task(handle_datasets_event(version_requested(dataset), ports))
        for dataset in (one, two)
    ]
    await asyncio.sleep(0.01)
    assert (backend.active[one], backend.active[two]) == (1, 1)
    backend.gate.set()
    await asyncio.gather(*tasks)


async def test_a_failed_version_releases_the_datasets_lock(
    backend: FakeVersioning, ports: VersioningPorts
) -> None:
    dataset_id = new_id()
    backend.fail["create_version"] = VersioningFailed("nope")
    await version_report(version_requested(dataset_id), ports)
    assert not ports.locks(dataset_id).locked()


# ------------------------------------------------------------------------------ other types


async def test_an_event_versioning_does_not_act_on_is_skipped(
    backend: FakeVersioning, sink: RecordingSink, ports: VersioningPorts
) -> None:
    payload = ModelUpdateCheckRequested(
        model_id=new_id(),
        registry_type="huggingface",
        registry_model_id="acme/m",
        pinned_revision="abc",
    )
    assert await handle_datasets_event(received(new_event(payload, source="gateway")), ports) == []
    assert (backend.calls, sink.published) == ([], [])
