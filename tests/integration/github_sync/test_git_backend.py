"""The git backend: real git against local bare repositories (the local default included)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llmops_github_sync.handlers import handle_models_event
from llmops_github_sync.ports import DependencyUnavailableError
from llmops_shared.events import Phase

from integration.github_sync.helpers import GOLDEN, git_repo, ports, received, registered, status_of

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
    assert created.details["action"] == "created"
    assert created.details["backend"] == "git"
    assert show(bare, PATH) == GOLDEN.read_bytes()
    assert git("rev-parse", "main", cwd=bare).strip() == created.details["commit"]
    unchanged = await sync(p, registered())
    assert unchanged.details["action"] == "unchanged"
    assert len(log(bare)) == 1
    updated = await sync(p, registered(version="2"))
    assert updated.details["action"] == "updated"
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
    assert status.details["action"] == "created"
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
    commits = {s.details["commit"] for s in statuses} - {None}
    assert commits == {git("rev-parse", "main", cwd=bare).strip()}


async def test_unreachable_remote_is_a_dependency_outage(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "gs", remote=str(tmp_path / "missing.git"), timeout_s=10)
    with pytest.raises(DependencyUnavailableError):
        await sync(ports(repo), registered())
    with pytest.raises(DependencyUnavailableError):
        await repo.ping()
