"""The model store: one plain directory per downloaded commit, complete or absent.

Layout: ``<store>/<owner>--<name>/<commit sha>/<repo files>`` (a repo id without an owner is
just ``<name>``). A snapshot is assembled in a sibling staging directory
``.<sha>.partial-<pid>-<random>`` and renamed into place in one step, so a reader (or a
redelivered import) sees either the whole snapshot or none; a failed download removes its
staging directory. Two workers downloading the same commit at once (a reclaimed long download)
each assemble their own staging directory; the first rename wins and the other is discarded.

A staging directory is held open with an exclusive ``flock`` for as long as its download runs,
so a worker killed mid-download (SIGKILL, OOM, a lost node) leaves a directory whose lock is
free: :meth:`SnapshotStore.sweep` removes such leftovers once they are older than
``stale_after_s`` (default :data:`STALE_STAGING_AGE_S`). A live staging directory is never
removed, whatever its age: its lock is held (the lock, not the pid in the name, decides; the pid
is there for people).

Files are hard links to the ``huggingface_hub`` cache blobs when both live on one filesystem
(no second copy of the weights), else copies. Treat snapshots as read-only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Final

from llmops_shared.logging import get_logger

STALE_STAGING_AGE_S: Final = 3600.0
"""A staging directory left by a dead worker is removed once it is this old (seconds)."""

_LEFTOVER_RE: Final = re.compile(r"^\..+\.(?:partial|replaced)-[0-9]+-[0-9a-f]+$")
_LEGACY_LEFTOVER_RE: Final = re.compile(r"^\..+\.partial-[0-9a-f]{8}$")  # before the pid
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*$")
_MAX_NAME: Final = 96

_log = get_logger(__name__)


class InvalidRepoId(ValueError):
    """A repository id that is not a Hub id (and so could share a directory with another)."""


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a Hub model id, else :class:`InvalidRepoId`.

    The Hub's rule: ``name`` or ``owner/name``, each of letters, digits, ``_``, ``-`` and
    ``.``, where ``-`` and ``.`` separate and never start, end or double. It is what makes
    ``owner/name -> owner--name`` one-to-one: ``a--b`` or ``a-/b`` would otherwise map onto the
    directory of ``a/b`` or ``a/-b``. The events are validated with the same rule; this is the
    backend's own guard for ids that reach it any other way.
    """
    parts = repo_id.split("/")
    if len(parts) > 2 or not all(len(p) <= _MAX_NAME and _NAME_RE.match(p) for p in parts):
        raise InvalidRepoId(
            f"invalid repository id {repo_id!r}: expected 'name' or 'owner/name' of letters, "
            "digits, '_', '-' and '.', where '-' and '.' never start, end or double"
        )
    return repo_id


def repo_dir_name(repo_id: str) -> str:
    """``owner/name`` -> ``owner--name``; one-to-one for the ids :func:`check_repo_id`
    accepts (no name contains ``--`` or starts or ends with ``-``), others are refused."""
    return check_repo_id(repo_id).replace("/", "--")


def safe_relative_path(path: str) -> PurePosixPath:
    """A repository file path that cannot escape the snapshot directory."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in {"", ".", ".."} for part in pure.parts):
        raise ValueError(f"unsafe file path in repository listing: {path!r}")
    return pure


class SnapshotStore:
    """Complete snapshots under ``root``; see the module docstring for the guarantees."""

    def __init__(self, root: Path, *, stale_after_s: float = STALE_STAGING_AGE_S) -> None:
        self.root = root
        self.stale_after_s = stale_after_s
        self._locks: dict[Path, int] = {}  # staging dir -> the fd holding its flock
        self._guard = threading.Lock()

    def snapshot_dir(self, repo_id: str, revision: str) -> Path:
        """Where the snapshot of ``repo_id`` at commit ``revision`` lives (or would)."""
        return self.root / repo_dir_name(repo_id) / revision

    def existing(self, repo_id: str, revision: str) -> Path | None:
        """The complete snapshot if it has been downloaded already."""
        path = self.snapshot_dir(repo_id, revision)
        return path if path.is_dir() else None

    @staticmethod
    def missing(snapshot: Path, files: Iterable[tuple[str, int | None]]) -> list[str]:
        """The ``(path, size)`` entries absent from ``snapshot`` (or of another known size)."""
        absent: list[str] = []
        for path, size in files:
            target = snapshot.joinpath(*safe_relative_path(path).parts)
            try:
                found = target.stat().st_size
            except OSError:
                absent.append(path)
                continue
            if size is not None and found != size:
                absent.append(path)
        return absent

    def staging(self, repo_id: str, revision: str) -> Path:
        """A fresh, empty staging directory beside the final one, locked until committed or
        discarded. Stale leftovers of dead workers beside it are swept first."""
        final = self.snapshot_dir(repo_id, revision)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._sweep_dir(final.parent)
        path = final.parent / f".{revision}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            # a filesystem without flock: download anyway; a sweeper cannot lock it either,
            # so it is never removed as stale (a failed download still discards it)
            os.close(fd)
            _log.warning("staging_not_locked", path=str(path), error=str(exc))
            return path
        with self._guard:
            self._locks[path] = fd
        return path

    @staticmethod
    def place(source: Path, staging: Path, relative_path: str) -> None:
        """Put ``source`` (a cache file, maybe a symlink to a blob) at ``relative_path``."""
        target = staging.joinpath(*safe_relative_path(relative_path).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob = source.resolve()
        try:
            os.link(blob, target)
        except OSError:  # another filesystem, or links not allowed: copy
            shutil.copyfile(blob, target)

    def commit(self, staging: Path, final: Path, *, replace: bool = False) -> Path:
        """Rename ``staging`` to ``final``; if another download won the race, keep theirs.

        ``replace``: ``final`` exists but is incomplete (a file was removed by hand): move it
        aside, rename ``staging`` in, remove the old one.
        """
        try:
            if replace and final.is_dir():
                aside = (
                    final.parent / f".{final.name}.replaced-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                )
                with contextlib.suppress(FileNotFoundError):
                    os.rename(final, aside)
                    shutil.rmtree(aside, ignore_errors=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            self._unlock(staging)
        return final

    def discard(self, staging: Path) -> None:
        """Remove a staging directory (a failed or abandoned download)."""
        try:
            shutil.rmtree(staging, ignore_errors=True)
        finally:
            self._unlock(staging)

    def sweep(self) -> list[Path]:
        """Remove the leftovers of dead workers in the whole store; returns what was removed.

        Best effort: an unreadable directory is skipped. Called when the backend starts.
        """
        removed: list[Path] = []
        try:
            repo_dirs = [p for p in self.root.iterdir() if p.is_dir()]
        except OSError:
            return removed
        for repo_dir in repo_dirs:
            removed += self._sweep_dir(repo_dir)
        return removed

    def _sweep_dir(self, repo_dir: Path) -> list[Path]:
        """Remove stale, unlocked staging directories directly under ``repo_dir``."""
        removed: list[Path] = []
        cutoff = time.time() - self.stale_after_s
        try:
            entries = list(repo_dir.iterdir())
        except OSError:
            return removed
        for entry in entries:
            name = entry.name
            if not (_LEFTOVER_RE.match(name) or _LEGACY_LEFTOVER_RE.match(name)):
                continue
            with self._guard:
                if entry in self._locks:
                    continue  # ours, in progress
            try:
                if not entry.is_dir() or entry.is_symlink() or entry.stat().st_mtime > cutoff:
                    continue
                fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live download holds it
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                os.close(fd)
            if not entry.exists():
                removed.append(entry)
                _log.info("stale_staging_removed", path=str(entry))
        return removed

    def _unlock(self, staging: Path) -> None:
        with self._guard:
            fd = self._locks.pop(staging, None)
        if fd is not None:
            os.close(fd)

    @staticmethod
    def uri(path: Path) -> str:
        """``file://`` URI of a snapshot directory."""
        return path.resolve().as_uri()
