"""The github-sync handlers against an in-memory repository and MLflow registry: what each
model-version event makes of the run's values file and what the one report says, plus the
reconcile of ``POST /poll`` (the GitHub and git backends have their own tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmops_github_sync.handlers import (
    SKIPPED_NO_RUN,
    MlflowNotConfigured,
    SyncPorts,
    handle_models_event,
    reconcile,
)
from llmops_github_sync.ports import (
    DependencyUnavailableError,
    ModelVersionRecord,
    SyncConflict,
    SyncRejected,
)
from llmops_github_sync.values import TemplateError
from llmops_shared.events import (
    Envelope,
    Event,
    ModelVersionChanged,
    ModelVersionRegistered,
    ModelVersionStatusUpdated,
    Phase,
    StatusEntity,
    TrainingJobCancelled,
    decode_event,
    encode_event,
    new_event,
)

from support.fakes.github_sync import FakeModelRegistry, FakeRepository

pytestmark = pytest.mark.unit

CORRELATION_ID = "req-github-sync-unit"
MODEL = "Qwen/Qwen3-0.6B"
RUN = "abc123def456"
PATH = f"values/{RUN}.yaml"
CREATED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden" / "new_run.yaml"


def received(envelope: Envelope) -> Event:
    return decode_event(encode_event(envelope))


def registered(
    version: str = "1",
    run_id: str | None = RUN,
    *,
    experiment_id: str | None = "1",
    tags: dict[str, str] | None = None,
) -> Event:
    payload = ModelVersionRegistered(
        model_name=MODEL,
        version=version,
        run_id=run_id,
        experiment_id=experiment_id,
        source=f"models:/{MODEL}/{version}",
        created_at=CREATED,
        tags=tags or {},
    )
    return received(new_event(payload, source="tracking", correlation_id=CORRELATION_ID))


def changed(version: str = "1") -> Event:
    payload = ModelVersionChanged(
        model_name=MODEL,
        version=version,
        run_id=RUN,
        experiment_id="1",
        source=f"models:/{MODEL}/{version}",
        created_at=CREATED,
        change="alias_created",
        key="champion",
    )
    return received(new_event(payload, source="tracking", correlation_id=CORRELATION_ID))


async def only_report(event: Event, ports: SyncPorts) -> ModelVersionStatusUpdated:
    [envelope] = await handle_models_event(event, ports)
    decoded = received(envelope)
    assert decoded.envelope.source == "github-sync"
    assert decoded.envelope.correlationid == CORRELATION_ID
    status = decoded.payload_as(ModelVersionStatusUpdated)
    assert status.entity is StatusEntity.MODEL_VERSION
    assert status.reporter == "github-sync"
    return status


@pytest.fixture
def repo() -> FakeRepository:
    return FakeRepository(backend_name="github")


@pytest.fixture
def mlflow() -> FakeModelRegistry:
    return FakeModelRegistry(experiments={RUN: "7"})


@pytest.fixture
def ports(repo: FakeRepository, mlflow: FakeModelRegistry) -> SyncPorts:
    return SyncPorts(repository=repo, registry=mlflow, values_path="values")


# ------------------------------------------------------------------------------ sync


async def test_a_new_version_creates_the_runs_values_file(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    status = await only_report(registered(), ports)

    assert repo.files[PATH] == GOLDEN.read_bytes()
    [commit] = repo.commits
    assert commit.message.startswith(f"github-sync: add {PATH} for {MODEL}/1")
    assert commit.message.endswith(f"Model-Version: {MODEL}/1\nRun-Id: {RUN}\n")
    assert status.entity_id == f"{MODEL}/1"
    assert status.phase is Phase.SUCCEEDED
    assert status.reason == f"{PATH}: created in {commit.sha[:12]}"
    details = status.details
    assert (details.path, details.action, details.commit) == (PATH, "created", commit.sha)
    assert (details.backend, details.pull_request) == ("github", None)
    assert (details.max_model_len, details.capped) == (4096, False)


async def test_a_redelivered_version_changes_nothing(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    event = registered()
    await only_report(event, ports)
    status = await only_report(event, ports)

    assert len(repo.commits) == 1
    assert status.phase is Phase.SUCCEEDED
    assert status.reason == f"{PATH}: unchanged"
    assert (status.details.action, status.details.commit) == ("unchanged", None)
    assert status.details.max_model_len == 4096


async def test_a_newer_version_updates_global_and_keeps_peoples_edits(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    await only_report(registered("1"), ports)
    edited = repo.files[PATH] + b"# tuned by hand\nextra: {replicas: 2}\n"
    repo.files[PATH] = edited

    status = await only_report(registered("2"), ports)
    assert status.details.action == "updated"
    assert status.details.commit == repo.commits[-1].sha
    text = repo.files[PATH].decode()
    assert 'modelVersion: "2"' in text
    assert text.endswith("# tuned by hand\nextra: {replicas: 2}\n")
    assert "Changed: modelVersion." in repo.commits[-1].message


async def test_an_older_version_does_not_move_the_file_backwards(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    await only_report(registered("3"), ports)
    status = await only_report(registered("2"), ports)

    assert len(repo.commits) == 1
    assert status.details.action == "unchanged"
    assert status.reason == (
        f"{PATH}: unchanged; names a newer version (3) of {MODEL} for this run: kept"
    )


async def test_a_file_that_is_not_a_mapping_is_regenerated(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    repo.files[PATH] = b"- just\n- a list\n"
    status = await only_report(registered(), ports)

    assert status.details.action == "regenerated"
    assert repo.files[PATH] == GOLDEN.read_bytes()
    assert "stays in this file's history" in repo.commits[-1].message


async def test_an_alias_change_is_synced_like_a_registration(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    status = await only_report(changed(), ports)
    assert status.entity_id == f"{MODEL}/1"
    assert status.details.action == "created"
    assert repo.synced == [(PATH, RUN)]


async def test_without_a_values_path_the_file_is_at_the_root(repo: FakeRepository) -> None:
    status = await only_report(registered(), SyncPorts(repository=repo))
    assert status.details.path == f"{RUN}.yaml"
    assert f"{RUN}.yaml" in repo.files


async def test_a_pull_request_is_reported(repo: FakeRepository, ports: SyncPorts) -> None:
    repo.pull_requests = True
    status = await only_report(registered(), ports)

    assert status.details.pull_request == "https://git.test/pulls/1"
    assert status.reason is not None
    assert status.reason.endswith("(pull request https://git.test/pulls/1)")


async def test_max_model_len_is_capped_to_the_models_context(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    status = await only_report(registered(tags={"max_position_embeddings": "2048"}), ports)

    assert (status.details.max_model_len, status.details.capped) == (2048, True)
    assert "maxModelLen: 2048" in repo.files[PATH].decode()
    assert status.reason is not None
    assert "; maxModelLen capped to 2048: the model's max_position_embeddings is 2048" in (
        status.reason
    )


async def test_the_experiment_is_looked_up_when_the_event_has_none(
    repo: FakeRepository, mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    status = await only_report(registered(experiment_id=None), ports)

    assert mlflow.looked_up == [RUN]
    assert status.details.action == "created"
    assert 'experimentId: "7"' in repo.files[PATH].decode()


async def test_an_event_with_its_experiment_needs_no_lookup(
    mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    await only_report(registered(experiment_id="1"), ports)
    assert mlflow.looked_up == []


# ------------------------------------------------------------------------------ not synced


async def test_a_version_without_a_run_is_skipped(repo: FakeRepository, ports: SyncPorts) -> None:
    status = await only_report(registered(run_id=None), ports)

    assert status.phase is Phase.SUCCEEDED
    assert status.reason == SKIPPED_NO_RUN
    assert (status.details.action, status.details.path) == ("skipped", None)
    assert status.details.backend == "github"
    # on the wire every fact is there, null where nothing was written (as before typed details)
    assert status.details.model_dump(mode="json") == {
        "path": None,
        "action": "skipped",
        "commit": None,
        "backend": "github",
        "pull_request": None,
        "max_model_len": None,
        "capped": False,
    }
    assert repo.synced == []


async def test_a_run_id_that_cannot_name_a_file_fails_without_writing(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    """The event schema already refuses such run ids; the handler checks again anyway."""
    valid = registered()
    payload = valid.payload_as(ModelVersionRegistered).model_copy(update={"run_id": "../x"})
    status = await only_report(Event(envelope=valid.envelope, payload=payload), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == (
        "run id '../x' cannot name a values file: it must be 1-64 letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )
    assert repo.synced == []
    assert status.details.model_dump(mode="json") == {}


async def test_a_run_mlflow_no_longer_has_fails(
    repo: FakeRepository, mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    mlflow.experiments.clear()
    status = await only_report(registered(experiment_id=None), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == f"no values file: run {RUN} does not exist"
    assert repo.synced == []


async def test_without_mlflow_a_version_lacking_its_experiment_fails(
    repo: FakeRepository,
) -> None:
    status = await only_report(registered(experiment_id=None), SyncPorts(repository=repo))

    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert "MLFLOW_TRACKING_URI is not set" in status.reason
    assert repo.synced == []


async def test_a_file_the_repository_refuses_fails(repo: FakeRepository, ports: SyncPorts) -> None:
    repo.fail["sync_file"] = SyncRejected("values is a file, not a directory")
    status = await only_report(registered(), ports)

    assert status.phase is Phase.FAILED
    assert status.reason == "values is a file, not a directory"


async def test_a_template_that_does_not_parse_fails(
    repo: FakeRepository, mlflow: FakeModelRegistry, tmp_path: Path
) -> None:
    template = tmp_path / "values.yaml"
    template.write_text("global: [unclosed\n")
    ports = SyncPorts(repository=repo, registry=mlflow, template_path=template)

    status = await only_report(registered(), ports)
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert status.reason.startswith(f"the values template {template} does not parse as YAML")
    assert repo.synced == []


# ------------------------------------------------------------------------------ retried


async def test_an_unreadable_template_keeps_the_event_pending(
    repo: FakeRepository, tmp_path: Path
) -> None:
    ports = SyncPorts(repository=repo, template_path=tmp_path / "absent.yaml")
    with pytest.raises(DependencyUnavailableError, match="cannot be read"):
        await handle_models_event(registered(), ports)


async def test_a_repository_outage_keeps_the_event_pending(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    repo.fail["sync_file"] = DependencyUnavailableError("GitHub is rate limiting")
    with pytest.raises(DependencyUnavailableError):
        await handle_models_event(registered(), ports)


async def test_an_mlflow_outage_keeps_the_event_pending(
    mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    mlflow.fail["experiment_of"] = DependencyUnavailableError("MLflow unreachable")
    with pytest.raises(DependencyUnavailableError):
        await handle_models_event(registered(experiment_id=None), ports)


async def test_a_conflict_is_left_to_the_runtime_to_retry(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    repo.fail["sync_file"] = SyncConflict("others kept writing the branch")
    with pytest.raises(SyncConflict):
        await handle_models_event(registered(), ports)


async def test_an_event_github_sync_does_not_act_on_is_skipped(
    repo: FakeRepository, ports: SyncPorts
) -> None:
    event = received(new_event(TrainingJobCancelled(job_id="j-1", reason="x"), source="gateway"))
    assert await handle_models_event(event, ports) == []
    assert repo.synced == []


# ------------------------------------------------------------------------------ reconcile


def record(version: str, run_id: str | None, **kw: Any) -> ModelVersionRecord:
    values: dict[str, Any] = {"experiment_id": "1", "created_at": CREATED, **kw}
    return ModelVersionRecord(model_name=MODEL, version=version, run_id=run_id, **values)


async def test_reconcile_writes_every_runs_file_in_one_commit(
    repo: FakeRepository, mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    later = datetime(2024, 2, 1, tzinfo=UTC)
    mlflow.versions = [
        record("1", RUN),
        record("2", RUN, created_at=later),  # the newest version of a run wins
        record("3", "run2", experiment_id=None),  # looked up: not in MLflow any more
        record("4", "run3", experiment_id=None),
        record("5", None),
        record("6", "bad/id"),
        record("7", "run4", run_missing="run deleted"),
    ]
    mlflow.experiments["run3"] = "9"

    report = await reconcile(ports)
    assert (report.versions, report.files, report.created) == (7, 2, 2)
    assert (report.skipped_without_run, report.skipped_invalid_run_id) == (1, 1)
    assert report.skipped_missing_run == 2
    assert report.backend == "github"
    [commit] = repo.commits
    assert report.commit == commit.sha
    assert commit.message.startswith(
        "github-sync: reconcile 2 values files with MLflow (2 created)"
    )
    assert set(commit.files) == {PATH, "values/run3.yaml"}
    assert 'modelVersion: "2"' in repo.files[PATH].decode()
    assert 'experimentId: "9"' in repo.files["values/run3.yaml"].decode()


async def test_reconcile_of_files_already_right_makes_no_commit(
    repo: FakeRepository, mlflow: FakeModelRegistry, ports: SyncPorts
) -> None:
    mlflow.versions = [record("1", RUN)]
    await reconcile(ports)
    report = await reconcile(ports)

    assert (report.unchanged, report.created, report.commit) == (1, 0, None)
    assert len(repo.commits) == 1


async def test_reconcile_needs_mlflow(repo: FakeRepository) -> None:
    with pytest.raises(MlflowNotConfigured):
        await reconcile(SyncPorts(repository=repo))


async def test_reconcile_with_a_broken_template_raises(
    repo: FakeRepository, mlflow: FakeModelRegistry, tmp_path: Path
) -> None:
    template = tmp_path / "values.yaml"
    template.write_text("- not a mapping\n")
    ports = SyncPorts(repository=repo, registry=mlflow, template_path=template)
    with pytest.raises(TemplateError, match="is not a YAML mapping"):
        await reconcile(ports)
