"""Failures of the DVC backend: a clear Failed reason, and the repository exactly as before.

One repository per module holds a recorded v1; every failing request below tries to add a
version to it, and each test asserts that tags, log and working tree are unchanged (no tag, no
commit left on the branch, no fetched data) and that a good version still works afterwards.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.adapters.storage import S3Options
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import VersioningPorts

from integration.versioning.conftest import Datasets, dvc_backend
from integration.versioning.helpers import (
    as_event,
    generate_dataset,
    git,
    new_id,
    only_status,
    read_tree,
    repo_state,
    version_envelope,
    version_facts,
)
from support.s3_server import free_port
from support.streams import details_of

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Recorded:
    root: Path
    backend: DvcBackend
    dataset_id: str
    v1_id: str
    small: Path

    @property
    def repo(self) -> Path:
        return self.backend.repo(self.dataset_id)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    root = tmp_path_factory.mktemp("dvc-errors")
    small = root / "small"
    generate_dataset(small, 60)
    backend = dvc_backend(root)
    dataset_id = new_id()
    envelope = version_envelope(dataset_id, "v1.0.0", str(small))
    handled = asyncio.run(handle_datasets_event(as_event(envelope), VersioningPorts(backend)))
    status = only_status(handled)
    assert status.phase == "Succeeded", status.reason
    return Recorded(root, backend, dataset_id, status.entity_id, small)


async def attempt(backend: DvcBackend, dataset_id: str, tag: str, storage_uri: str) -> str:
    """Request a version that must fail; its reason."""
    envelope = version_envelope(dataset_id, tag, storage_uri)
    status = only_status(await handle_datasets_event(as_event(envelope), VersioningPorts(backend)))
    assert status.phase == "Failed", details_of(status)
    assert status.reason is not None
    assert "\n" not in status.reason
    return status.reason


async def test_missing_storage_uri(recorded: Recorded, tmp_path: Path) -> None:
    before = repo_state(recorded.repo)
    missing = tmp_path / "nowhere"
    reason = await attempt(recorded.backend, recorded.dataset_id, "v2", str(missing))
    assert reason == f"storage_uri {missing} does not exist"
    assert repo_state(recorded.repo) == before


async def test_empty_dataset(recorded: Recorded, datasets: Datasets) -> None:
    before = repo_state(recorded.repo)
    reason = await attempt(recorded.backend, recorded.dataset_id, "v2", str(datasets.empty))
    assert reason == f"storage_uri {datasets.empty} contains no files"
    assert repo_state(recorded.repo) == before


async def test_duplicate_tag_for_another_version(recorded: Recorded, datasets: Datasets) -> None:
    before = repo_state(recorded.repo)
    reason = await attempt(recorded.backend, recorded.dataset_id, "v1.0.0", str(datasets.v1_1))
    assert reason == (
        f"version tag v1.0.0 already exists for dataset {recorded.dataset_id} "
        f"(version {recorded.v1_id})"
    )
    assert repo_state(recorded.repo) == before


async def test_first_version_of_a_missing_dataset_creates_nothing(tmp_path: Path) -> None:
    backend = dvc_backend(tmp_path)
    dataset_id = new_id()
    await attempt(backend, dataset_id, "v1", str(tmp_path / "nowhere"))
    assert not backend.repo(dataset_id).exists()


async def test_local_remote_that_cannot_be_written(recorded: Recorded, datasets: Datasets) -> None:
    blocker = recorded.root / "a-file"
    blocker.write_text("not a directory")
    broken = dvc_backend(recorded.root, remote_url=str(blocker / "remote"))
    before = repo_state(recorded.repo)
    data_before = read_tree(recorded.repo / "data")

    reason = await attempt(broken, recorded.dataset_id, "v2", str(datasets.v1_1))

    assert reason.startswith("dvc push failed: "), reason
    assert "Not a directory" in reason
    assert repo_state(recorded.repo) == before
    assert read_tree(recorded.repo / "data") == data_before  # the fetched v2 data is gone
    assert not (recorded.repo / ".llmops-staging").exists()
    assert not (recorded.repo / ".llmops-previous").exists()


async def test_s3_remote_on_a_closed_port(recorded: Recorded, datasets: Datasets) -> None:
    s3 = S3Options(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id=SecretStr("x"),
        secret_access_key=SecretStr("y"),
        region="us-east-1",
        connect_timeout_s=1,
        read_timeout_s=1,
        retries=1,
    )
    broken = dvc_backend(recorded.root, remote_url="s3://nobucket/dvc", s3=s3)
    before = repo_state(recorded.repo)

    reason = await attempt(broken, recorded.dataset_id, "v2", str(datasets.v1_1))

    assert reason.startswith("dvc push failed:"), reason
    assert repo_state(recorded.repo) == before


async def test_after_failures_a_good_version_still_works(
    recorded: Recorded, datasets: Datasets
) -> None:
    tags_before = git(recorded.repo, "tag", "-l").split()
    envelope = version_envelope(recorded.dataset_id, "v2", str(datasets.v1_1))
    status = only_status(
        await handle_datasets_event(as_event(envelope), VersioningPorts(recorded.backend))
    )
    assert status.phase == "Succeeded", status.reason
    assert version_facts(status)["file_count"] == 1005
    assert git(recorded.repo, "tag", "-l").split() == [*tags_before, "v2"]


async def test_a_crashed_attempt_is_undone_before_the_next(
    recorded: Recorded, datasets: Datasets
) -> None:
    """A worker killed after its commit but before the tag left a commit and staging behind."""
    repo = recorded.repo
    tagged_head = git(repo, "rev-parse", "HEAD")
    (repo / ".llmops-staging").mkdir()
    (repo / ".llmops-staging" / "half.jsonl").write_text("{}")
    git(repo, "commit", "--allow-empty", "-m", "llmops: dataset version v9\n\nversion_id: x")

    envelope = version_envelope(recorded.dataset_id, "v3", str(recorded.small))
    status = only_status(
        await handle_datasets_event(as_event(envelope), VersioningPorts(recorded.backend))
    )

    assert status.phase == "Succeeded", status.reason
    assert git(repo, "rev-parse", "HEAD~1") == tagged_head  # the orphan commit is gone
    assert "v9" not in git(repo, "log", "--format=%s")
    assert not (repo / ".llmops-staging").exists()
