"""Hostile inputs against the built-in backend and S3 (fast: no DVC): object keys and manifest
paths that try to leave their directory, symbolic links in a source, local paths the worker must
never read or write (``/proc``, its own store, outside ``LOCAL_DATA_ROOTS``), and restores killed
midway and redelivered. The DVC-specific cases are in ``test_dvc_safety.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops_versioning.adapters import restore as restore_module
from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.adapters.storage import S3Options
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import (
    RestoreRequest,
    VersioningFailed,
    VersioningPorts,
    no_progress,
)

from integration.versioning.conftest import builtin_backend, dvc_backend
from integration.versioning.helpers import (
    Crash,
    as_event,
    crash_after,
    generate_dataset,
    new_id,
    only_status,
    read_tree,
    restore_envelope,
    version_envelope,
    version_request,
)
from support.s3_server import S3Server

pytestmark = pytest.mark.integration


def every_path(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# ---------------------------------------------------------------------------- path traversal


@pytest.mark.parametrize("backend_name", ["builtin", "dvc"])
async def test_s3_keys_that_leave_the_prefix_fail_the_version(
    backend_name: str, s3_server: S3Server, s3_options: S3Options, tmp_path: Path
) -> None:
    """``ds/../../x`` and ``ds//tmp/x`` would be written two levels up / to an absolute path."""
    bucket = f"trav-{new_id()[:8]}"
    s3_server.create_bucket(bucket)
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="up/ok.txt", Body=b"ok")
    client.put_object(Bucket=bucket, Key="up/../../escape.txt", Body=b"evil")
    client.put_object(Bucket=bucket, Key="abs/ok.txt", Body=b"ok")
    client.put_object(Bucket=bucket, Key=f"abs/{tmp_path}/abs.txt", Body=b"evil")
    backend = (
        builtin_backend(tmp_path, s3=s3_options)
        if backend_name == "builtin"
        else dvc_backend(tmp_path, s3=s3_options)
    )
    dataset_id = new_id()
    before = every_path(tmp_path)

    for prefix, key in [("up", "up/../../escape.txt"), ("abs", f"abs/{tmp_path}/abs.txt")]:
        envelope = version_envelope(dataset_id, "v1", f"s3://{bucket}/{prefix}")
        status = only_status(
            await handle_datasets_event(as_event(envelope), VersioningPorts(backend))
        )
        assert status.phase == "Failed"
        assert status.reason == (
            f"object key {key!r} under storage_uri s3://{bucket}/{prefix} "
            "is not a safe relative path"
        )

    assert not (tmp_path / "abs.txt").exists()
    assert not any(p.endswith("escape.txt") for p in every_path(tmp_path))
    new = every_path(tmp_path) - before
    assert all(p.startswith(("repos", "builtin")) for p in new), new
    if isinstance(backend, DvcBackend):
        assert not backend.repo(dataset_id).exists()  # refused before the repo was created


async def test_manifest_paths_that_leave_the_target_fail_the_restore(
    tmp_path: Path,
) -> None:
    """A manifest on disk edited to hold ``../../x`` and ``/abs`` writes nothing outside."""
    source = tmp_path / "src"
    generate_dataset(source, 3)
    backend = builtin_backend(tmp_path)
    request = version_request("d1", "v1", str(source))
    facts = backend.create_version_sync(request, no_progress)
    manifest = backend.manifest_path("d1", "v1")
    record = json.loads(manifest.read_text())
    _, md5, size = facts.files[1]
    outside = tmp_path / "abs-escape.txt"
    for bad in ["../../escape.txt", str(outside), "a//b.txt", "a\\..\\b.txt", "./c.txt"]:
        record["facts"]["files"] = [list(facts.files[0]), [bad, md5, size]]
        manifest.write_text(json.dumps(record))
        target = tmp_path / "out" / "a" / "b"
        envelope = restore_envelope("d1", request.version_id, "v1", str(target))
        status = only_status(
            await handle_datasets_event(as_event(envelope), VersioningPorts(backend))
        )
        assert status.phase == "Failed"
        assert status.reason == (
            f"the manifest of version {request.version_id}: path {bad!r} is not a safe "
            "relative path"
        )
        assert not (tmp_path / "out").exists()  # checked before the first byte
    assert not outside.exists()
    assert not any(p.endswith("escape.txt") for p in every_path(tmp_path))


# ---------------------------------------------------------------------------- symbolic links


def test_symlinks_in_a_local_source(tmp_path: Path) -> None:
    source = tmp_path / "src"
    generate_dataset(source, 4)
    elsewhere = tmp_path / "elsewhere"
    generate_dataset(elsewhere, 2)
    backend = builtin_backend(tmp_path)

    # a symlinked file versions its target's bytes
    (source / "linked.jsonl").symlink_to(elsewhere / "shard-1/part-1/rec-00001.jsonl")
    facts = backend.create_version_sync(version_request("d1", "v1", str(source)), no_progress)
    assert "linked.jsonl" in {path for path, _, _ in facts.files}

    # a symlinked directory is refused rather than silently skipped
    (source / "shard-0" / "more").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(VersioningFailed) as failed:
        backend.create_version_sync(version_request("d1", "v2", str(source)), no_progress)
    assert str(failed.value) == (
        f"storage_uri {source}: shard-0/more is a symbolic link to a directory; not supported"
    )
    (source / "shard-0" / "more").unlink()

    # a symlinked file may not reach what a source may not be
    (source / "env").symlink_to("/proc/self/environ")
    with pytest.raises(VersioningFailed, match=r"storage_uri file env is not allowed: .*/proc"):
        backend.create_version_sync(version_request("d1", "v3", str(source)), no_progress)


# ---------------------------------------------------------------------------- local roots


async def test_system_and_worker_directories_are_refused(tmp_path: Path) -> None:
    backend = builtin_backend(tmp_path)
    ports = VersioningPorts(backend)
    source = tmp_path / "src"
    generate_dataset(source, 2)
    good = only_status(
        await handle_datasets_event(as_event(version_envelope("d1", "v1", str(source))), ports)
    )
    assert good.phase == "Succeeded"
    store = backend.store_dir

    for uri in ["/proc/self/environ", "/etc", "/", str(store), f"file://{store}/objects", "/dev"]:
        status = only_status(
            await handle_datasets_event(as_event(version_envelope("d1", "v2", uri)), ports)
        )
        assert status.phase == "Failed", uri
        assert status.reason is not None
        assert status.reason.startswith(f"storage_uri {uri} is not allowed: it resolves to ")
    assert not backend.manifest_path("d1", "v2").exists()

    version_id = good.entity_id
    for target in ["/proc/self/x", str(store / "out"), "/etc/llmops-out"]:
        envelope = restore_envelope("d1", version_id, "v1", target)
        status = only_status(await handle_datasets_event(as_event(envelope), ports))
        assert status.phase == "Failed", target
        assert status.reason is not None
        assert status.reason.startswith(f"target {target} is not allowed: ")
    assert not (store / "out").exists()


def test_local_data_roots(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    generate_dataset(allowed / "ds", 2)
    generate_dataset(outside / "ds", 2)
    (allowed / "sneaky").symlink_to(outside / "ds", target_is_directory=True)
    backend = BuiltinBackend(tmp_path / "store", local_data_roots=[allowed])

    with pytest.raises(VersioningFailed) as failed:
        backend.create_version_sync(version_request("d1", "v1", str(outside / "ds")), no_progress)
    assert str(failed.value) == (
        f"storage_uri {outside / 'ds'} is not allowed: it resolves to {outside / 'ds'}, which "
        f"is not inside LOCAL_DATA_ROOTS ({allowed})"
    )
    sneaky = version_request("d1", "v1", str(allowed / "sneaky"))
    with pytest.raises(VersioningFailed, match="not inside LOCAL_DATA_ROOTS"):  # resolved
        backend.create_version_sync(sneaky, no_progress)

    request = version_request("d1", "v1", str(allowed / "ds"))
    backend.create_version_sync(request, no_progress)

    def restore_to(target: Path) -> None:
        backend.restore_sync(
            RestoreRequest(new_id(), "d1", request.version_id, "v1", str(target)), no_progress
        )

    with pytest.raises(VersioningFailed, match="is not below LOCAL_DATA_ROOTS"):
        restore_to(outside / "out")
    with pytest.raises(VersioningFailed, match="is not below LOCAL_DATA_ROOTS"):
        restore_to(allowed)  # the root itself: its staging sibling would be outside
    restore_to(allowed / "out")
    assert read_tree(allowed / "out") == read_tree(allowed / "ds")
    assert not (outside / "out").exists()


# ---------------------------------------------------------------------------- crash safety


def test_a_local_restore_killed_midway_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(restore_module, "BATCH", 2)
    source = tmp_path / "src"
    generate_dataset(source, 7)
    backend = builtin_backend(tmp_path)
    request = version_request("d1", "v1", str(source))
    backend.create_version_sync(request, no_progress)
    target = tmp_path / "out" / "restored"
    restore = RestoreRequest(new_id(), "d1", request.version_id, "v1", str(target))
    records = backend.store_dir / "restores"

    # killed after the second batch: the target is untouched, the staging dir holds 4 files
    with pytest.raises(Crash):
        backend.restore_sync(restore, crash_after(2))
    staging = restore_module.staging_path(target, restore.restore_id)
    assert not target.exists()
    assert len(read_tree(staging)) == 4
    assert restore_module.marker_path(records, restore.restore_id).exists()

    facts = backend.restore_sync(restore, no_progress)  # the redelivery
    assert facts.files_done == 7
    assert read_tree(target) == read_tree(source)
    assert not staging.exists()
    assert not restore_module.marker_path(records, restore.restore_id).exists()

    # killed after the rename, before the record: the redelivery clears and redoes it
    target2 = tmp_path / "out" / "second"
    target2.mkdir()  # an existing empty directory is a valid target too
    restore2 = RestoreRequest(new_id(), "d1", request.version_id, "v1", str(target2))

    def killed(path: Path, facts: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(restore_module, "save_record", killed)
        with pytest.raises(Crash):
            backend.restore_sync(restore2, no_progress)
    assert read_tree(target2) == read_tree(source)
    assert backend.restore_sync(restore2, no_progress).files_done == 7
    assert read_tree(target2) == read_tree(source)

    # a finished restore re-reports its facts without writing
    (target2 / "shard-0").rename(tmp_path / "moved")
    assert backend.restore_sync(restore2, no_progress) == facts.model_copy(
        update={"target_uri": str(target2)}
    )
    assert not (target2 / "shard-0").exists()

    # a foreign non-empty target is still refused, and left alone
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    restore3 = RestoreRequest(new_id(), "d1", request.version_id, "v1", str(tmp_path / "foreign"))
    with pytest.raises(VersioningFailed, match="is not empty"):
        backend.restore_sync(restore3, no_progress)
    assert read_tree(tmp_path / "foreign") == {"keep.txt": b"mine"}


def test_an_s3_restore_killed_midway_is_redone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    s3_options: S3Options,
) -> None:
    monkeypatch.setattr(restore_module, "BATCH", 2)
    source = tmp_path / "src"
    expected = generate_dataset(source, 7)
    backend = builtin_backend(tmp_path, s3=s3_options)
    request = version_request("d1", "v1", str(source))
    backend.create_version_sync(request, no_progress)
    bucket = f"restore-{new_id()[:8]}"
    s3_server.create_bucket(bucket)
    restore = RestoreRequest(new_id(), "d1", request.version_id, "v1", f"s3://{bucket}/out")

    with pytest.raises(Crash):
        backend.restore_sync(restore, crash_after(2))
    assert len(s3_server.keys(bucket, "out/")) == 4  # half a restore: redelivery must not fail

    facts = backend.restore_sync(restore, no_progress)
    assert facts.files_done == 7
    client = s3_server.client()
    restored = {
        key.removeprefix("out/"): client.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in s3_server.keys(bucket, "out/")
    }
    assert restored == expected
    records = backend.store_dir / "restores"
    assert not restore_module.marker_path(records, restore.restore_id).exists()
