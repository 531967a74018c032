"""The model store: one plain directory per downloaded commit, complete or absent.

Layout: ``<store>/<owner>--<name>/<commit sha>/<repo files>`` (a repo id without an owner is
just ``<name>``). A snapshot is assembled in a sibling staging directory
``.<sha>.partial-<random>`` and renamed into place in one step, so a reader (or a redelivered
import) sees either the whole snapshot or none; a failed download removes its staging
directory. Two workers downloading the same commit at once (a reclaimed long download) each
assemble their own staging directory; the first rename wins and the other is discarded.

Files are hard links to the ``huggingface_hub`` cache blobs when both live on one filesystem
(no second copy of the weights), else copies. Treat snapshots as read-only.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath


def repo_dir_name(repo_id: str) -> str:
    """``owner/name`` -> ``owner--name`` (Hub repo ids contain no ``--`` ambiguity that
    matters here: the directory is only ever derived from the id, never parsed back)."""
    return repo_id.replace("/", "--")


def safe_relative_path(path: str) -> PurePosixPath:
    """A repository file path that cannot escape the snapshot directory."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in {"", ".", ".."} for part in pure.parts):
        raise ValueError(f"unsafe file path in repository listing: {path!r}")
    return pure


class SnapshotStore:
    """Complete snapshots under ``root``; see the module docstring for the guarantees."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def snapshot_dir(self, repo_id: str, revision: str) -> Path:
        """Where the snapshot of ``repo_id`` at commit ``revision`` lives (or would)."""
        return self.root / repo_dir_name(repo_id) / revision

    def existing(self, repo_id: str, revision: str) -> Path | None:
        """The complete snapshot if it has been downloaded already."""
        path = self.snapshot_dir(repo_id, revision)
        return path if path.is_dir() else None

    def staging(self, repo_id: str, revision: str) -> Path:
        """A fresh, empty staging directory beside the final one."""
        final = self.snapshot_dir(repo_id, revision)
        final.parent.mkdir(parents=True, exist_ok=True)
        path = final.parent / f".{revision}.partial-{uuid.uuid4().hex[:8]}"
        path.mkdir()
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

    @staticmethod
    def commit(staging: Path, final: Path) -> Path:
        """Rename ``staging`` to ``final``; if another download won the race, keep theirs."""
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)
        return final

    @staticmethod
    def discard(staging: Path) -> None:
        """Remove a staging directory (a failed or abandoned download)."""
        shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def uri(path: Path) -> str:
        """``file://`` URI of a snapshot directory."""
        return path.resolve().as_uri()
