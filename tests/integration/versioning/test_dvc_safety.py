"""Hostile inputs against the DVC backend, on one small repository per module.

Tags named like git's own refs (``HEAD``) must resolve to the tag in every git/dvc command, tag
names git refuses fail before any work, a ``.dir`` object that lists a path leaving the target
fails the restore, an unreadable one is reported Failed (not retried forever), restores killed
midway are redone, restore targets inside the worker's own directories are refused, and remote
credentials never reach a tag message.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops_versioning.adapters import restore as restore_module
from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import (
    RestoreRequest,
    VersioningFailed,
    VersioningPorts,
    VersionRequest,
    no_progress,
)

from integration.versioning.conftest import dvc_backend
from integration.versioning.helpers import (
    Crash,
    as_event,
    crash_after,
    generate_dataset,
    git,
    new_id,
    only_status,
    read_tree,
    restore_envelope,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Repo:
    root: Path
    backend: DvcBackend
    dataset_id: str
    ids: dict[str, str]
    sources: dict[str, Path]

    @property
    def repo(self) -> Path:
        return self.backend.repo(self.dataset_id)

    def restore(self, tag: str, target: Path, restore_id: str | None = None) -> RestoreRequest:
        return RestoreRequest(
            restore_id or new_id(), self.dataset_id, self.ids[tag], tag, str(target)
        )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """Versions ``v1`` (7 files), ``HEAD`` (f.txt = two) and ``v3`` (f.txt = three)."""
    root = tmp_path_factory.mktemp("dvc-safety")
    backend = dvc_backend(root)
    dataset_id = new_id()
    ids: dict[str, str] = {}
    sources: dict[str, Path] = {}
    for tag, text in [("v1", None), ("HEAD", "two"), ("v3", "three")]:
        source = root / "src" / tag
        if text is None:
            generate_dataset(source, 7)
        else:
            source.mkdir(parents=True)
            (source / "f.txt").write_text(text)
        request = VersionRequest(dataset_id, new_id(), tag, "jsonl", str(source))
        backend.create_version_sync(request, no_progress)
        ids[tag] = request.version_id
        sources[tag] = source
    return Repo(root, backend, dataset_id, ids, sources)


def test_a_tag_named_head_is_the_tag_everywhere(recorded: Repo) -> None:
    backend, repo = recorded.backend, recorded.repo
    tag_commit = git(repo, "rev-parse", "refs/tags/HEAD^{commit}")
    assert tag_commit != git(repo, "rev-parse", "--verify", "HEAD")  # bare HEAD is v3

    # redelivery rebuilds the facts from the tag, not from the branch head
    again = VersionRequest(recorded.dataset_id, recorded.ids["HEAD"], "HEAD", "jsonl", "/nowhere")
    facts = backend.create_version_sync(again, no_progress)
    assert facts.revision == tag_commit
    assert [path for path, _, _ in facts.files] == ["f.txt"]
    assert facts.files[0][2] == 3

    out = recorded.root / "out-head"
    backend.restore_sync(recorded.restore("HEAD", out), no_progress)
    assert read_tree(out) == {"f.txt": b"two"}

    # objects gone from the cache: fetched from the remote for the tag's commit
    md5 = facts.files[0][1]
    backend.object_path(md5).unlink()
    out2 = recorded.root / "out-head-fetched"
    backend.restore_sync(recorded.restore("HEAD", out2), no_progress)
    assert read_tree(out2) == {"f.txt": b"two"}


@pytest.mark.parametrize("tag", ["v1.", "a..b", "x.lock", "-v1"])
def test_tag_names_git_refuses_fail_before_any_work(recorded: Repo, tag: str) -> None:
    backend = recorded.backend
    dataset_id = new_id()
    request = VersionRequest(dataset_id, new_id(), tag, "jsonl", str(recorded.sources["v1"]))
    with pytest.raises(VersioningFailed) as failed:
        backend.create_version_sync(request, no_progress)
    assert str(failed.value) == (
        f"version tag {tag!r} is not a valid git tag name "
        f"(git check-ref-format refuses refs/tags/{tag})"
    )
    assert not backend.repo(dataset_id).exists()


def test_a_dir_object_listing_an_unsafe_path_fails_the_restore(recorded: Repo) -> None:
    backend = recorded.backend
    facts = backend.create_version_sync(
        VersionRequest(recorded.dataset_id, recorded.ids["v1"], "v1", "jsonl", "/x"), no_progress
    )
    dir_object = backend.object_path(facts.digest)
    original = dir_object.read_bytes()
    _, md5, _ = facts.files[0]
    target = recorded.root / "deep" / "a" / "b"
    try:
        for bad in ["../../escape.jsonl", f"{recorded.root}/abs.jsonl", "x/./y"]:
            dir_object.chmod(0o644)
            dir_object.write_text(json.dumps([{"md5": md5, "relpath": bad}]))
            with pytest.raises(VersioningFailed) as failed:
                backend.restore_sync(recorded.restore("v1", target), no_progress)
            assert str(failed.value) == (
                f"the manifest {facts.digest}: path {bad!r} is not a safe relative path"
            )
    finally:
        dir_object.write_bytes(original)
    assert not (recorded.root / "deep").exists()
    assert not (recorded.root / "abs.jsonl").exists()


async def test_an_unreadable_dir_object_is_reported_failed(recorded: Repo) -> None:
    """A bug-like error (JSON) is a Failed report, not retries and a dead letter."""
    backend = recorded.backend
    facts = backend.create_version_sync(
        VersionRequest(recorded.dataset_id, recorded.ids["v1"], "v1", "jsonl", "/x"), no_progress
    )
    dir_object = backend.object_path(facts.digest)
    original = dir_object.read_bytes()
    target = recorded.root / "unreadable"
    try:
        dir_object.chmod(0o644)
        dir_object.write_text("{not json")
        envelope = restore_envelope(recorded.dataset_id, recorded.ids["v1"], "v1", str(target))
        status = only_status(
            await handle_datasets_event(as_event(envelope), VersioningPorts(backend))
        )
    finally:
        dir_object.write_bytes(original)
    assert status.phase == "Failed"
    assert status.reason is not None
    assert status.reason.startswith(
        "restore of version v1 failed unexpectedly: JSONDecodeError: "
    ), status.reason
    assert not target.exists()
    # the same restore id works once the object is readable again
    status = only_status(await handle_datasets_event(as_event(envelope), VersioningPorts(backend)))
    assert status.phase == "Succeeded", status.reason


def test_a_restore_killed_midway_is_redone(recorded: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "BATCH", 2)
    backend = recorded.backend
    target = recorded.root / "crashed" / "out"
    request = recorded.restore("v1", target)
    with pytest.raises(Crash):
        backend.restore_sync(request, crash_after(1))
    assert not target.exists()
    assert restore_module.marker_path(backend.restores_dir, request.restore_id).exists()

    facts = backend.restore_sync(request, no_progress)
    assert facts.files_done == 7
    assert read_tree(target) == read_tree(recorded.sources["v1"])
    assert not restore_module.staging_path(target, request.restore_id).exists()
    assert backend.restore_sync(request, no_progress) == facts  # recorded: re-reported


def test_targets_in_the_workers_own_directories_are_refused(recorded: Repo) -> None:
    backend = recorded.backend
    for target in [
        backend.repos_dir / "x",
        recorded.repo / "data" / "x",
        backend.cache_dir / "x",
        recorded.root / "remote" / "x",
    ]:
        with pytest.raises(VersioningFailed) as failed:
            backend.restore_sync(recorded.restore("v1", target), no_progress)
        assert str(failed.value).startswith(f"target {target} is not allowed: it resolves to ")
        assert not target.exists()
    with pytest.raises(VersioningFailed, match="is not allowed"):  # a source containing them
        backend.create_version_sync(
            VersionRequest(recorded.dataset_id, new_id(), "v9", "jsonl", str(recorded.root)),
            no_progress,
        )
    assert "v9" not in git(recorded.repo, "tag", "-l")


def test_remote_credentials_stay_out_of_tags_and_facts(recorded: Repo, tmp_path: Path) -> None:
    """A remote URL with user:password is configured for DVC, never tagged or reported."""
    backend = DvcBackend(
        recorded.backend.options.__class__(
            repos_dir=tmp_path / "repos", remote_url="s3://AKIA:s3cr3t@bucket/dvc"
        )
    )
    request = VersionRequest(
        "d1", new_id(), "v1", "jsonl", "s3://user:pw@host/data", parent_version_id=None
    )
    message = backend._tag_message(request)
    assert "s3cr3t" not in message
    assert "pw@" not in message
    assert "remote_uri: s3://AKIA:***@bucket/dvc" in message
    assert "storage_uri: s3://user:***@host/data" in message
    assert backend.public_remote == "s3://AKIA:***@bucket/dvc"
    repo = tmp_path / "repos" / "d1"
    (repo / ".dvc").mkdir(parents=True)
    backend._configure(repo)
    assert "s3cr3t" in (repo / ".dvc" / "config.local").read_text()  # DVC still gets it
    shutil.rmtree(repo)
