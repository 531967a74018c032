"""The ``git`` backend: plain ``git`` (subprocess) against any remote: GitLab, Gitea, an ssh or
https URL, a bare repository on disk.

A working clone lives under the work dir. Every sync, under one lock: ``fetch``, reset the clone
hard to the remote branch (an empty remote starts an orphan branch), read the files, let
``decide`` plan them, write, one ``commit``, ``push``. A rejected push (someone pushed first: not a
fast-forward) starts over from the fetch, so the plan is made again on what is there now
(bounded). A remote that cannot be reached raises ``DependencyUnavailableError``.

The clone is the process's own: stale ``*.lock`` files a killed git left behind (a timeout, a
crash) are removed before the reset, and a clone that still cannot be reset is cloned again.
Every file is written only at a path inside the clone whose components are no symlinks
(``lstat``): a symlink in the values repository (``values -> /etc``) would otherwise make the
sync read or overwrite a file outside it; such a path is refused (``SyncRejected``).

With no remote configured the backend creates a local bare repository
``<work dir>/values.git`` on first use, so the local stack works offline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from pydantic import JsonValue

from llmops_github_sync.ports import (
    BatchMessage,
    Decide,
    DecideMany,
    DependencyUnavailableError,
    SyncConflict,
    SyncRejected,
    SyncResult,
    check_relative_path,
)
from llmops_shared.logging import get_logger

_log = get_logger(__name__)
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "[remote rejected]", "stale info")


class GitCommandError(Exception):
    """A git command failed; ``stderr`` holds its message."""

    def __init__(self, args: Sequence[str], code: int, stdout: str, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} exited {code}: {stderr.strip()[-500:]}")
        self.code = code
        self.stdout = stdout
        self.stderr = stderr


class GitRepository:
    """Values files in one branch of any git remote."""

    name = "git"

    def __init__(
        self,
        *,
        remote_url: str | None,
        branch: str,
        work_dir: Path,
        values_path: str = "",
        author_name: str = "llmops github-sync",
        author_email: str = "github-sync@llmops.local",
        push_retries: int = 5,
        timeout_s: float = 60.0,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.local_bare = self.work_dir / "values.git"
        self.remote_url = remote_url or str(self.local_bare.resolve())
        self.local_default = remote_url is None
        self.branch = branch
        self.values_path = values_path.strip("/")
        self.clone_dir = self.work_dir / "clone"
        self.author = (author_name, author_email)
        self.push_retries = push_retries
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def describe(self) -> dict[str, JsonValue]:
        return {
            "backend": self.name,
            "repository": _redact(self.remote_url),
            "branch": self.branch,
            "values_path": self.values_path,
            "mode": "push",
            "local_default": self.local_default,
        }

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping)

    def _ping(self) -> None:
        self._ensure_local_bare()
        try:
            self._git(["ls-remote", "--heads", self.remote_url], cwd=self.work_dir)
        except GitCommandError as exc:
            raise DependencyUnavailableError(f"git remote unreachable: {exc}") from None

    async def sync_file(self, path: str, decide: Decide, *, run_id: str) -> SyncResult:
        return await asyncio.to_thread(
            self._sync, [path], lambda _p, current: decide(current), lambda plans: plans[0].message
        )

    async def sync_files(
        self, paths: Sequence[str], decide: DecideMany, message: BatchMessage
    ) -> SyncResult:
        return await asyncio.to_thread(self._sync, list(paths), decide, message)

    # ------------------------------------------------------------------ the sync

    def _sync(self, paths: list[str], decide: DecideMany, message: BatchMessage) -> SyncResult:
        for path in paths:
            check_relative_path(path)
        with self._lock:
            self.ensure()
            for attempt in range(1, self.push_retries + 1):
                self._recover_and_reset()
                plans = [decide(path, self._read(path)) for path in paths]
                changed = [p for p in plans if p.content is not None]
                if not changed:
                    return SyncResult(plans)
                for plan in changed:
                    target = self._path(plan.path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(plan.content or b"")
                self._git(["add", "--", *(p.path for p in changed)])
                name, email = self.author
                self._git(
                    [
                        "-c",
                        f"user.name={name}",
                        "-c",
                        f"user.email={email}",
                        "-c",
                        "commit.gpgsign=false",
                        "commit",
                        "--quiet",
                        "--no-verify",
                        "-F",
                        "-",
                    ],
                    stdin=message(changed),
                )
                sha = self._git(["rev-parse", "HEAD"]).strip()
                try:
                    self._git(["push", "--porcelain", "origin", f"HEAD:refs/heads/{self.branch}"])
                except GitCommandError as exc:
                    output = exc.stdout + exc.stderr
                    if any(marker in output for marker in _REJECTED):
                        _log.info("git_push_rejected", attempt=attempt, branch=self.branch)
                        continue
                    raise DependencyUnavailableError(f"git push failed: {exc}") from None
                return SyncResult(plans, sha)
            raise SyncConflict(
                f"pushes to {self.branch} kept being rejected through {self.push_retries} tries"
            )

    def ensure(self) -> None:
        """The local bare repository (default only) and the working clone exist."""
        self._ensure_local_bare()
        if not (self.clone_dir / ".git").is_dir():
            self.clone_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._git(
                    ["clone", "--quiet", "--no-checkout", self.remote_url, str(self.clone_dir)],
                    cwd=self.work_dir,
                )
            except GitCommandError as exc:
                raise DependencyUnavailableError(f"git clone failed: {exc}") from None

    def _ensure_local_bare(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.local_default and not (self.local_bare / "HEAD").is_file():
            self._git(
                ["init", "--quiet", "--bare", "-b", self.branch, str(self.local_bare)],
                cwd=self.work_dir,
            )
            _log.info("git_local_repository_created", path=str(self.local_bare))

    def _recover_and_reset(self) -> None:
        """Reset the clone to the remote; a clone a killed git left broken is repaired (stale
        locks removed) or, when the reset still fails, cloned again."""
        self._remove_stale_locks()
        try:
            self._git(["rev-parse", "--git-dir"])  # a clone at all (a local check, no network)
            self._reset_to_remote()
        except GitCommandError as exc:
            _log.warning("git_clone_reset_failed_recloning", error=str(exc))
            shutil.rmtree(self.clone_dir, ignore_errors=True)
            self.ensure()
            self._reset_to_remote()

    def _remove_stale_locks(self) -> None:
        """Remove ``.git/*.lock`` (index, HEAD, refs...): only this process uses the clone, and
        only under ``self._lock``, so any lock found here was left by a killed git."""
        git_dir = self.clone_dir / ".git"
        candidates = [*git_dir.glob("*.lock")]
        refs = git_dir / "refs"
        if refs.is_dir():
            candidates += refs.rglob("*.lock")
        for lock in candidates:
            try:
                lock.unlink()
            except FileNotFoundError:
                continue
            _log.warning("git_stale_lock_removed", path=str(lock.relative_to(self.clone_dir)))

    def _reset_to_remote(self) -> None:
        try:
            self._git(["fetch", "--quiet", "--prune", "origin"])
        except GitCommandError as exc:
            raise DependencyUnavailableError(f"git fetch failed: {exc}") from None
        remote = f"refs/remotes/origin/{self.branch}"
        try:
            self._git(["rev-parse", "--verify", "--quiet", remote])
        except GitCommandError:
            # an empty remote (or a new branch): start an orphan branch with no files; one left
            # by an earlier attempt whose push failed is deleted first (--orphan refuses it)
            orphan = f"llmops-sync-{os.getpid()}"
            self._git(["update-ref", "-d", f"refs/heads/{orphan}"])
            self._git(["checkout", "--quiet", "--orphan", orphan])
            self._git(["rm", "-r", "--quiet", "--cached", "--ignore-unmatch", "."])
            self._git(["clean", "-fdxq"])
            return
        self._git(["checkout", "--quiet", "-B", self.branch, remote])
        self._git(["reset", "--quiet", "--hard", remote])
        self._git(["clean", "-fdxq"])

    def _path(self, path: str) -> Path:
        """``path`` inside the clone, refused (SyncRejected) unless it is a plain relative path
        none of whose existing components is a symlink and which resolves inside the clone."""
        check_relative_path(path)
        root = self.clone_dir.resolve()
        current = root
        for part in path.split("/"):
            current = current / part
            try:
                mode = current.lstat().st_mode
            except OSError:
                break  # absent: created by the write, as plain directories and a plain file
            if stat.S_ISLNK(mode):
                raise SyncRejected(
                    f"{current.relative_to(root)} is a symlink in {_redact(self.remote_url)}: "
                    "github-sync does not follow symlinks in the values repository"
                )
        target = root / path
        if not target.resolve().is_relative_to(root):
            raise SyncRejected(f"{path} resolves outside the working clone")
        return target

    def _read(self, path: str) -> bytes | None:
        target = self._path(path)
        if self.values_path:
            directory = self._path(self.values_path)
            if directory.exists() and not directory.is_dir():
                raise SyncRejected(
                    f"the values path {self.values_path!r} is a file in "
                    f"{_redact(self.remote_url)}, not a directory"
                )
        if target.is_dir():
            raise SyncRejected(f"{path} is a directory in {_redact(self.remote_url)}")
        return target.read_bytes() if target.is_file() else None

    def _git(self, args: list[str], *, cwd: Path | None = None, stdin: str | None = None) -> str:
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
            "LC_ALL": "C",
        }
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.clone_dir,
                input=stdin,
                capture_output=True,
                text=True,
                env=env,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DependencyUnavailableError(
                f"git {args[0]} timed out after {self.timeout_s:.0f}s"
            ) from None
        if done.returncode != 0:
            secret, shown = self.remote_url, _redact(self.remote_url)
            raise GitCommandError(
                [a.replace(secret, shown) for a in args],
                done.returncode,
                done.stdout.replace(secret, shown),
                done.stderr.replace(secret, shown),
            )
        return done.stdout


def _redact(url: str) -> str:
    """A remote URL without credentials (``https://user:token@host`` -> ``https://***@host``)."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
