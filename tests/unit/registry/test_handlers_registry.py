"""The registry handlers against an in-memory Hub: imports (rules, download, failures,
progress) and update checks, one report per event (the Hub adapter has its own tests)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmops_registry.handlers import handle_catalog_event
from llmops_registry.ports import (
    AccessDenied,
    OfflineMode,
    RegistryPorts,
    RegistryUnavailable,
    RepoFile,
    ResolvedModel,
)
from llmops_shared.events import (
    DatasetRestoreRequested,
    Envelope,
    Event,
    ModelImportRequested,
    ModelStatusUpdated,
    ModelUpdateCheckRequested,
    Phase,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.events.payloads.catalog import ImportProgress

from support.fakes.registry import FakeRegistry
from support.fakes.sink import RecordingSink

pytestmark = pytest.mark.unit

CORRELATION_ID = "req-registry-unit"
REPO = "acme/tiny-llama"
SHA = "0123456789abcdef0123456789abcdef01234567"
NEW_SHA = "fedcba9876543210fedcba9876543210fedcba98"
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "n_positions": 2048}
DOWNLOADING = [
    ImportProgress(
        stage="downloading", files_done=i, files_total=2, bytes_done=i * 50, bytes_total=100
    )
    for i in range(3)
]


def new_id() -> str:
    return str(uuid.uuid4())


def received(envelope: Envelope) -> Event:
    return decode_event(encode_event(envelope))


def model(config: dict[str, Any] | None = None, *, sha: str = SHA, **facts: Any) -> ResolvedModel:
    return ResolvedModel(
        repo_id=REPO,
        revision=sha,
        url=f"https://hub.test/{REPO}/tree/{sha}",
        config=config or LLAMA,
        files=(RepoFile("config.json", 10), RepoFile("model.safetensors", 90)),
        license="apache-2.0",
        **facts,
    )


def import_requested(
    *, model_id: str | None = None, revision: str | None = None, download: bool = False
) -> Event:
    payload = ModelImportRequested(
        model_id=model_id or new_id(),
        registry_type="huggingface",
        registry_model_id=REPO,
        revision=revision,
        download=download,
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


def check_requested(pinned: str = SHA, *, revision: str | None = None) -> Event:
    payload = ModelUpdateCheckRequested(
        model_id=new_id(),
        registry_type="huggingface",
        registry_model_id=REPO,
        revision=revision,
        pinned_revision=pinned,
    )
    return received(new_event(payload, source="gateway", correlation_id=CORRELATION_ID))


async def only_report(event: Event, ports: RegistryPorts) -> ModelStatusUpdated:
    """The one report the handler returned for ``event``, as the gateway decodes it."""
    [envelope] = await handle_catalog_event(event, ports)
    decoded = received(envelope)
    assert decoded.envelope.source == "registry"
    assert decoded.envelope.correlationid == CORRELATION_ID
    status = decoded.payload_as(ModelStatusUpdated)
    assert status.entity is StatusEntity.MODEL
    request = event.payload
    assert isinstance(request, ModelImportRequested | ModelUpdateCheckRequested)
    assert status.entity_id == request.model_id
    assert status.reporter == "registry"
    return status


@pytest.fixture
def hub() -> FakeRegistry:
    hub = FakeRegistry()
    hub.add(model())
    return hub


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def ports(hub: FakeRegistry, sink: RecordingSink) -> RegistryPorts:
    return RegistryPorts(backend=hub, sink=sink, progress_interval_s=0)


# ------------------------------------------------------------------------------ import


async def test_an_import_reports_the_models_facts(hub: FakeRegistry, ports: RegistryPorts) -> None:
    status = await only_report(import_requested(), ports)

    assert status.phase is Phase.SUCCEEDED
    assert status.reason == f"imported {REPO} at {SHA}"
    facts = status.details.model
    assert facts is not None
    assert (facts.repo_id, facts.revision, facts.registry_type) == (REPO, SHA, "huggingface")
    assert (facts.family, facts.model_type, facts.max_position_embeddings) == (
        "llama",
        "llama",
        2048,
    )
    assert facts.architectures == ["LlamaForCausalLM"]
    assert [(f.path, f.size) for f in facts.files] == [
        ("config.json", 10),
        ("model.safetensors", 90),
    ]
    assert facts.total_bytes == 100
    assert facts.safetensors is True
    assert facts.license == "apache-2.0"
    assert facts.snapshot_uri is None
    assert status.details.progress is None
    assert hub.resolved == [(REPO, None)]
    assert hub.downloaded == []  # no download asked for


async def test_an_import_with_download_reports_the_snapshot(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    status = await only_report(import_requested(download=True), ports)

    assert hub.downloaded == [hub.models[REPO]]
    assert status.phase is Phase.SUCCEEDED
    assert status.reason == f"imported {REPO} at {SHA} (snapshot downloaded)"
    assert status.details.model is not None
    assert status.details.model.snapshot_uri == f"file:///models/{REPO}/{SHA}"


async def test_an_import_at_a_revision_resolves_that_revision(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.add(model(sha=NEW_SHA), revision="v2")
    status = await only_report(import_requested(revision="v2"), ports)

    assert hub.resolved == [(REPO, "v2")]
    assert status.details.model is not None
    assert status.details.model.revision == NEW_SHA


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (
            {"architectures": ["Wav2Vec2ForCTC"], "max_position_embeddings": 512},
            "unsupported architecture Wav2Vec2ForCTC",
        ),
        ({"max_position_embeddings": 512}, "lists no architectures"),
        ({"architectures": ["LlamaForCausalLM"]}, "has no max_position_embeddings"),
        (
            {"architectures": ["LlamaForCausalLM"], "n_positions": 0},
            "n_positions is 0, not a positive integer",
        ),
        ({"architectures": "LlamaForCausalLM", "n_positions": 8}, "architectures is not a list"),
    ],
)
async def test_a_model_outside_the_rules_fails_before_any_download(
    hub: FakeRegistry, ports: RegistryPorts, config: dict[str, Any], reason: str
) -> None:
    hub.add(model(config))
    status = await only_report(import_requested(download=True), ports)

    assert status.phase is Phase.FAILED
    assert reason in (status.reason or "")
    assert status.details.model is None
    assert hub.downloaded == []


async def test_a_registry_error_is_the_failed_reason(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.fail["resolve"] = AccessDenied(f"{REPO} is gated: accept its license on the Hub")
    status = await only_report(import_requested(), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == f"{REPO} is gated: accept its license on the Hub"


async def test_an_unknown_repository_fails(ports: RegistryPorts) -> None:
    hub = FakeRegistry()
    status = await only_report(import_requested(), RegistryPorts(backend=hub))
    assert status.phase is Phase.FAILED
    assert status.reason == f"repository {REPO} not found"


async def test_a_failed_download_fails_the_import(hub: FakeRegistry, ports: RegistryPorts) -> None:
    hub.fail["download"] = RegistryUnavailable("the Hub kept answering 503")
    status = await only_report(import_requested(download=True), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == "the Hub kept answering 503"
    assert status.details.model is None


async def test_an_unexpected_crash_still_ends_failed(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.fail["resolve"] = RuntimeError("boom\nsecond line")
    status = await only_report(import_requested(), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == f"import of {REPO} failed unexpectedly: RuntimeError: boom second line"


async def test_a_cancelled_import_is_not_reported(hub: FakeRegistry, ports: RegistryPorts) -> None:
    hub.fail["resolve"] = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await handle_catalog_event(import_requested(), ports)


@pytest.mark.parametrize(
    ("download", "said"),
    [(False, "the 2 cached files are reported, the commit"), (True, "reported and materialised")],
)
async def test_an_offline_import_without_a_file_list_says_so(
    hub: FakeRegistry, ports: RegistryPorts, download: bool, said: str
) -> None:
    hub.add(model(complete_listing=False))
    status = await only_report(import_requested(download=download), ports)

    assert status.phase is Phase.SUCCEEDED
    assert status.reason is not None
    assert "from the offline cache, which has no file list of this commit" in status.reason
    assert said in status.reason
    assert "(snapshot downloaded)" not in status.reason


# ------------------------------------------------------------------------------ progress


async def test_progress_is_published_while_importing_and_the_final_report_is_newest(
    hub: FakeRegistry, sink: RecordingSink, ports: RegistryPorts
) -> None:
    hub.download_progress = DOWNLOADING
    event = import_requested(model_id=new_id(), download=True)
    final = await only_report(event, ports)

    reports = [e.payload_as(ModelStatusUpdated) for e in sink.events]
    assert [r.details.progress.stage for r in reports if r.details.progress] == [
        "resolving",
        "downloading",
        "downloading",
        "downloading",
    ]
    assert all(r.phase is Phase.RUNNING for r in reports)
    assert {r.entity_id for r in reports} == {final.entity_id}
    assert all(e.envelope.correlationid == CORRELATION_ID for e in sink.events)
    assert reports[0].reason == f"resolving {REPO}"
    assert reports[-1].reason == f"downloading {REPO}: 2/2 files, 100/100 bytes"
    assert max(r.seq for r in reports) < final.seq


async def test_progress_is_throttled_to_one_report_per_stage_within_the_interval(
    hub: FakeRegistry, sink: RecordingSink
) -> None:
    hub.download_progress = DOWNLOADING
    ports = RegistryPorts(backend=hub, sink=sink, progress_interval_s=3600)
    await only_report(import_requested(revision=None, download=True), ports)

    stages = [e.payload_as(ModelStatusUpdated).details.progress for e in sink.events]
    assert [(p.stage, p.files_done) for p in stages if p] == [("resolving", 0), ("downloading", 0)]


async def test_the_resolving_report_names_the_revision(
    hub: FakeRegistry, sink: RecordingSink, ports: RegistryPorts
) -> None:
    hub.add(model(), revision="main")
    await only_report(import_requested(revision="main"), ports)
    assert sink.events[0].payload_as(ModelStatusUpdated).reason == f"resolving {REPO} at main"


async def test_without_a_sink_nothing_is_published_and_the_import_succeeds(
    hub: FakeRegistry,
) -> None:
    hub.download_progress = DOWNLOADING
    status = await only_report(import_requested(download=True), RegistryPorts(backend=hub))
    assert status.phase is Phase.SUCCEEDED


async def test_a_lost_progress_report_does_not_fail_the_import(hub: FakeRegistry) -> None:
    sink = RecordingSink(fail=ConnectionError("redis is gone"))
    hub.download_progress = DOWNLOADING
    ports = RegistryPorts(backend=hub, sink=sink, progress_interval_s=0)

    status = await only_report(import_requested(download=True), ports)
    assert status.phase is Phase.SUCCEEDED
    assert sink.published == []


# ------------------------------------------------------------------------------ update check


async def test_an_update_check_reports_a_moved_upstream(
    hub: FakeRegistry, sink: RecordingSink, ports: RegistryPorts
) -> None:
    hub.upstream[(REPO, None)] = NEW_SHA
    before = datetime.now(UTC)
    status = await only_report(check_requested(SHA), ports)

    assert status.phase is Phase.SUCCEEDED  # a check never changes the model's phase
    assert status.reason == f"upstream updated: {NEW_SHA} (pinned {SHA})"
    check = status.details.upstream
    assert check is not None
    assert (check.pinned_revision, check.upstream_revision) == (SHA, NEW_SHA)
    assert check.updated is True
    assert check.error is None
    assert before <= check.checked_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert status.details.model is None
    assert sink.published == []  # no progress for a check


async def test_an_update_check_reports_an_unchanged_upstream(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    status = await only_report(check_requested(SHA), ports)

    assert status.reason == f"up to date: upstream is still {SHA}"
    assert status.details.upstream is not None
    assert status.details.upstream.updated is False
    assert status.details.upstream.upstream_revision == SHA


async def test_an_update_check_follows_the_imported_branch(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.upstream[(REPO, "release")] = NEW_SHA
    status = await only_report(check_requested(SHA, revision="release"), ports)

    assert hub.checked == [(REPO, "release")]
    assert status.details.upstream is not None
    assert status.details.upstream.updated is True


async def test_an_update_check_that_cannot_ask_reports_the_error_not_a_failure(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.fail["current_revision"] = OfflineMode("offline mode: an update check needs the Hub")
    status = await only_report(check_requested(SHA), ports)

    assert status.phase is Phase.SUCCEEDED
    assert status.reason == "update check failed: offline mode: an update check needs the Hub"
    check = status.details.upstream
    assert check is not None
    assert (check.upstream_revision, check.updated) == (None, False)
    assert check.error == "offline mode: an update check needs the Hub"


async def test_an_update_check_that_crashes_reports_the_error(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.fail["current_revision"] = KeyError("sha")
    status = await only_report(check_requested(SHA), ports)

    assert status.phase is Phase.SUCCEEDED
    assert status.details.upstream is not None
    assert status.details.upstream.error == (
        f"update check of {REPO} failed unexpectedly: KeyError: 'sha'"
    )


async def test_a_long_error_is_clipped_to_a_valid_reason(
    hub: FakeRegistry, ports: RegistryPorts
) -> None:
    hub.fail["current_revision"] = RegistryUnavailable("503\n" + "x" * 5000)
    status = await only_report(check_requested(SHA), ports)

    assert status.reason is not None
    assert len(status.reason) <= 2000
    assert "\n" not in status.reason
    assert status.details.upstream is not None
    assert status.details.upstream.error is not None
    assert len(status.details.upstream.error) <= 2000


# ------------------------------------------------------------------------------ other types


async def test_an_event_the_registry_does_not_act_on_is_skipped(
    hub: FakeRegistry, sink: RecordingSink, ports: RegistryPorts
) -> None:
    payload = DatasetRestoreRequested(
        restore_id=new_id(),
        dataset_id=new_id(),
        version_id=new_id(),
        version_tag="v1",
        target_uri="/tmp/restore",
    )
    assert await handle_catalog_event(received(new_event(payload, source="gateway")), ports) == []
    assert (hub.resolved, hub.checked, sink.published) == ([], [], [])
