"""The main flow on real files, for the DVC backend (real git + DVC) and the built-in one.

v1 (1,000 files in nested directories) -> change 25, add 15, delete 10 -> v1.1; the diff of
the two reported manifests is exactly those changes; restoring v1 gives it back byte for byte;
a redelivered request reports the same facts without a second commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops_shared.events.payloads.datasets import VersionFacts, VersionProgress
from llmops_shared.manifest_diff import diff_manifests
from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.manifest import dir_digest
from llmops_versioning.ports import VersioningBackend

from integration.versioning.conftest import Datasets, builtin_backend, dvc_backend
from integration.versioning.helpers import (
    as_event,
    git,
    manifest_of,
    new_id,
    only_status,
    read_tree,
    recording_ports,
    restore_envelope,
    version_envelope,
    version_facts,
)
from support.streams import details_of

pytestmark = pytest.mark.integration


@pytest.fixture(params=["dvc", "builtin"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> VersioningBackend:
    if request.param == "dvc":
        return dvc_backend(tmp_path)
    return builtin_backend(tmp_path)


async def test_version_diff_restore_and_redelivery(
    backend: VersioningBackend, datasets: Datasets, tmp_path: Path
) -> None:
    ports, sink = recording_ports(backend)
    dataset_id = new_id()

    # v1
    v1_request = version_envelope(dataset_id, "v1.0.0", str(datasets.v1))
    v1_status = only_status(await handle_datasets_event(as_event(v1_request), ports))
    assert v1_status.phase == "Succeeded", v1_status.reason
    v1 = VersionFacts.model_validate(version_facts(v1_status))
    assert v1.backend == backend.name
    assert v1.file_count == 1000
    assert [tuple(f) for f in v1.files] == manifest_of(datasets.v1)
    assert v1.total_bytes == sum(size for _, _, size in v1.files)
    assert v1.digest == dir_digest(manifest_of(datasets.v1))  # DVC's '.dir' hash, both backends
    assert v1.tag == "v1.0.0"

    progress = [s for s in sink.statuses() if s.phase == "Running"]
    stages = [VersionProgress.model_validate(details_of(s)["progress"]).stage for s in progress]
    assert stages[0] == "fetching"
    assert {s.entity_id for s in progress} == {v1_status.entity_id}
    assert max(s.seq for s in progress) < v1_status.seq
    fetched = [VersionProgress.model_validate(details_of(s)["progress"]) for s in progress]
    assert fetched[-1].files_total == 1000

    # v1.1
    v1_1_request = version_envelope(
        dataset_id, "v1.1", str(datasets.v1_1), parent_version_id=v1_status.entity_id
    )
    v1_1_status = only_status(await handle_datasets_event(as_event(v1_1_request), ports))
    assert v1_1_status.phase == "Succeeded", v1_1_status.reason
    v1_1 = VersionFacts.model_validate(version_facts(v1_1_status))
    assert v1_1.parent_version_id == v1_status.entity_id
    assert [tuple(f) for f in v1_1.files] == manifest_of(datasets.v1_1)

    # the diff is exactly what changed, with sizes
    diff = diff_manifests(v1.files, v1_1.files)
    changes = datasets.changes
    assert {c.path: c.size for c in diff.added} == changes.added
    assert {c.path: c.base_size for c in diff.deleted} == changes.deleted
    assert {c.path: (c.base_size, c.size) for c in diff.modified} == changes.modified
    assert diff.unchanged == 1000 - len(changes.modified) - len(changes.deleted)
    assert diff.size_delta == v1_1.total_bytes - v1.total_bytes

    if isinstance(backend, DvcBackend):
        repo = backend.repo(dataset_id)
        assert git(repo, "tag", "-l").split() == ["v1.0.0", "v1.1"]
        assert v1.revision == git(repo, "rev-parse", "v1.0.0^{commit}")
        assert v1_1.revision == git(repo, "rev-parse", "HEAD")
        assert v1_status.entity_id in git(repo, "tag", "-l", "--format=%(contents)", "v1.0.0")
        assert v1.remote_uri == backend.remote_url
        assert git(repo, "status", "--porcelain") == ""

    # restore v1 to a new directory: byte for byte
    target = tmp_path / "restored-v1"
    restore = restore_envelope(dataset_id, v1_status.entity_id, "v1.0.0", str(target))
    restored = only_status(await handle_datasets_event(as_event(restore), ports))
    assert restored.phase == "Succeeded", restored.reason
    assert restored.entity == "dataset_restore"
    assert read_tree(target) == read_tree(datasets.v1)
    facts = details_of(restored)["restore"]
    assert isinstance(facts, dict)
    assert facts["files_done"] == facts["files_total"] == 1000
    assert facts["bytes_done"] == facts["bytes_total"] == v1.total_bytes
    restore_progress = [
        s for s in sink.statuses() if s.entity == "dataset_restore" and s.phase == "Running"
    ]
    assert restore_progress
    assert details_of(restore_progress[0])["restore"]["files_total"] == 1000

    # the same restore redelivered: the same report, nothing rewritten
    again = only_status(await handle_datasets_event(as_event(restore), ports))
    assert (again.phase, details_of(again)) == ("Succeeded", details_of(restored))

    # restoring over a non-empty target fails and leaves it alone
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    refused = only_status(
        await handle_datasets_event(
            as_event(restore_envelope(dataset_id, v1_status.entity_id, "v1.0.0", str(occupied))),
            ports,
        )
    )
    assert refused.phase == "Failed"
    assert refused.reason == (
        f"target {occupied} is not empty; a restore only writes to an empty or new location"
    )
    assert read_tree(occupied) == {"keep.txt": b"mine"}

    # v1 redelivered (a new envelope for the same version): same facts, no second commit
    log_before = (
        git(backend.repo(dataset_id), "log", "--oneline")
        if isinstance(backend, DvcBackend)
        else None
    )
    redelivered = version_envelope(
        dataset_id, "v1.0.0", str(datasets.v1_1), version_id=v1_status.entity_id
    )
    same = only_status(await handle_datasets_event(as_event(redelivered), ports))
    assert same.phase == "Succeeded"
    assert VersionFacts.model_validate(version_facts(same)) == v1
    if isinstance(backend, DvcBackend):
        assert git(backend.repo(dataset_id), "log", "--oneline") == log_before
