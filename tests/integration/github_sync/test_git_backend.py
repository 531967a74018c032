"""The git backend: real git against local bare repositories (the local default included)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llmops_github_sync.handlers import handle_models_event, sync_version
from llmops_github_sync.ports import DependencyUnavailableError, SyncRejected
from llmops_shared.events import ModelVersionRegistered, Phase

from integration.github_sync.helpers import GOLDEN, git_repo, ports, received, registered, status_of
from support.streams import details_of

pytestmark = pytest.mark.integration
PATH = "abc123def456.yaml"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def show(bare: Path, path: str, rev: str = "main") -> bytes | None:
    done = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=bare, capture_output=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def log(bare: Path) -> list[str]:
    return git("log", "--format=%s", "main", cwd=bare).splitlines()


async def sync(p, envelope):  # type: ignore[no-untyped-def]
    [status] = await handle_models_event(received(envelope), p)
    return status_of(status)


async def test_local_default_bare_repo_created_updated_unchanged(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "gs")
    p = ports(repo)
    created = await sync(p, registered())
    bare = tmp_path / "gs" / "values.git"
    assert (bare / "HEAD").is_file()
    assert details_of(created)["action"] == "created"
    assert details_of(created)["backend"] == "git"
    assert show(bare, PATH) == GOLDEN.read_bytes()
    assert git("rev-parse", "main", cwd=bare).strip() == details_of(created)["commit"]
    unchanged = await sync(p, registered())
    assert details_of(unchanged)["action"] == "unchanged"
    assert len(log(bare)) == 1
    updated = await sync(p, registered(version="2"))
    assert details_of(updated)["action"] == "updated"
    assert len(log(bare)) == 2


async def test_rejected_push_is_fetched_replanned_and_retried(tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    other = tmp_path / "other"
    git("clone", "--quiet", str(bare), str(other), cwd=tmp_path)
    (other / "README.md").write_text("hello\n")
    git("add", ".", cwd=other)
    git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qm", "first", cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)

    repo = git_repo(tmp_path / "gs", remote=str(bare))
    repo.ensure()
    # a concurrent pusher: the first time our clone pushes, someone else pushes first
    marker = tmp_path / "pushed-once"
    hook = repo.clone_dir / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"\n'
        f'  cd "{other}" && echo more >> README.md && git add . && '
        "git -c user.name=o -c user.email=o@x commit -qm concurrent && "
        "git push -q origin HEAD:main\n"
        "fi\n"
    )
    hook.chmod(0o755)
    status = await sync(ports(repo), registered())
    assert status.phase is Phase.SUCCEEDED
    assert details_of(status)["action"] == "created"
    assert marker.exists()
    assert log(bare)[:2] == [
        "github-sync: add abc123def456.yaml for Qwen/Qwen3-0.6B/1",
        "concurrent",
    ]
    assert show(bare, "README.md") == b"hello\nmore\n"
    assert show(bare, PATH) == GOLDEN.read_bytes()


async def test_two_workers_on_one_remote_make_one_commit(tmp_path: Path) -> None:
    import asyncio

    first = git_repo(tmp_path / "a")
    bare = first.local_bare
    await first.ping()  # creates the local bare repository
    second = git_repo(tmp_path / "b", remote=str(bare))
    event = registered()
    statuses = await asyncio.gather(sync(ports(first), event), sync(ports(second), event))
    # either the second one saw the first's commit (unchanged), or both made the very same
    # commit object (same tree, parent, message, author and second) and git stored it once
    assert len(log(bare)) == 1
    commits = {details_of(s)["commit"] for s in statuses} - {None}
    assert commits == {git("rev-parse", "main", cwd=bare).strip()}


async def test_unreachable_remote_is_a_dependency_outage(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "gs", remote=str(tmp_path / "missing.git"), timeout_s=10)
    with pytest.raises(DependencyUnavailableError):
        await sync(ports(repo), registered())
    with pytest.raises(DependencyUnavailableError):
        await repo.ping()


# ---------------------------------------------------------------------------- review findings


async def test_a_run_id_that_cannot_name_a_file_fails_and_writes_nothing(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "gs")
    event = received(registered())
    # the shared contract now refuses such a run id; an older producer's event still carries it
    bad = ModelVersionRegistered.model_construct(
        **{**event.payload.model_dump(), "run_id": "../../escape"}
    )
    status = status_of(await sync_version(event, bad, ports(repo, values_path="values")))
    assert status.phase is Phase.FAILED
    assert "cannot name a values file" in (status.reason or "")
    assert not (tmp_path / "escape.yaml").exists()
    assert not (tmp_path / "gs" / "escape.yaml").exists()
    # the backend refuses such a path itself, whoever asks
    with pytest.raises(SyncRejected):
        await repo.sync_file("../../escape.yaml", lambda _c: None, run_id="x")  # type: ignore[arg-type,return-value]


def _remote_with(tmp_path: Path, setup: str) -> Path:
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    other = tmp_path / "other"
    git("clone", "--quiet", str(bare), str(other), cwd=tmp_path)
    subprocess.run(["sh", "-c", setup], cwd=other, check=True)
    git("add", "-A", cwd=other)
    git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qm", "setup", cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)
    return bare


@pytest.mark.parametrize("link", ["dir", "file"])
async def test_symlinks_in_the_values_repository_are_refused(tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / PATH
    victim.write_text("not yours\n")
    if link == "dir":  # the values directory is a symlink out of the clone
        bare = _remote_with(tmp_path, f"ln -s {outside} values")
        p = ports(git_repo(tmp_path / "gs", remote=str(bare)), values_path="values")
    else:  # the file itself is a symlink out of the clone
        bare = _remote_with(tmp_path, f"ln -s {victim} {PATH}")
        p = ports(git_repo(tmp_path / "gs", remote=str(bare)))
    status = await sync(p, registered())
    assert status.phase is Phase.FAILED
    assert "symlink" in (status.reason or "")
    assert victim.read_text() == "not yours\n"
    assert log(bare) == ["setup"]


async def test_a_stale_index_lock_left_by_a_killed_git_does_not_wedge_the_clone(
    tmp_path: Path,
) -> None:
    repo = git_repo(tmp_path / "gs")
    p = ports(repo)
    await sync(p, registered())
    (repo.clone_dir / ".git" / "index.lock").write_text("")  # git was SIGKILLed mid-write
    (repo.clone_dir / ".git" / "refs" / "heads" / "main.lock").write_text("")
    status = await sync(p, registered(version="2"))
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert details_of(status)["action"] == "updated"
    assert not (repo.clone_dir / ".git" / "index.lock").exists()


async def test_a_broken_clone_is_cloned_again(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "gs")
    p = ports(repo)
    await sync(p, registered())
    (repo.clone_dir / ".git" / "HEAD").write_text("garbage\n")  # not a repository any more
    status = await sync(p, registered(version="2"))
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert details_of(status)["action"] == "updated"


async def test_a_failed_first_push_to_an_empty_remote_does_not_block_the_next(
    tmp_path: Path,
) -> None:
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    repo = git_repo(tmp_path / "gs", remote=str(bare))
    repo.ensure()
    marker = tmp_path / "failed-once"
    hook = repo.clone_dir / ".git" / "hooks" / "pre-push"
    hook.write_text(
        f'#!/bin/sh\nif [ ! -e "{marker}" ]; then touch "{marker}"; exit 1; fi\nexit 0\n'
    )
    hook.chmod(0o755)
    with pytest.raises(DependencyUnavailableError):
        await sync(ports(repo), registered())
    assert marker.exists()
    status = await sync(ports(repo), registered())  # the orphan branch is left: re-created
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert details_of(status)["action"] == "created"
    assert show(bare, PATH) == GOLDEN.read_bytes()
