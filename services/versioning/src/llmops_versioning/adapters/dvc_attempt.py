"""One version attempt's changes to a DVC dataset repository, and undoing them.

Split out of :mod:`llmops_versioning.adapters.dvc`: fetching the source into a staging
directory and swapping it in as ``data/``, then — when the attempt fails before its tag, or a
worker was killed mid-attempt — putting the repository back as it was, are one job: the
attempt's working-tree bookkeeping.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmops_versioning.adapters.dvc_commands import Commands
from llmops_versioning.adapters.dvc_repo import COMMIT_PREFIX, DATA, PREVIOUS, STAGING
from llmops_versioning.adapters.storage import Location, SourceFile, describe
from llmops_versioning.ports import Progress, ProgressCallback, VersioningFailed
from llmops_versioning.safety import safe_join

BATCH: Final = 64
"""Files fetched per batch (S3 downloads of a batch run concurrently)."""


@dataclass
class Attempt:
    """What one version attempt has changed so far (for its rollback)."""

    swapped: bool = False
    had_data: bool = False
    committed: bool = False
    tagged: bool = False


def fetch_data(
    root: Path,
    source: Location,
    files: list[SourceFile],
    progress: ProgressCallback,
    state: Attempt,
) -> dict[str, int]:
    """Copy the source into a staging dir, then swap it in as ``data/``; relpath -> size."""
    staging = root / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    files_total, bytes_total = len(files), sum(f.size for f in files)
    bytes_done = 0
    sizes: dict[str, int] = {}
    progress(Progress("fetching", 0, files_total, 0, bytes_total))
    for start in range(0, files_total, BATCH):
        batch = files[start : start + BATCH]
        targets = [safe_join(staging, file.relpath, what="source file") for file in batch]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source.download(batch, targets)
        except Exception as exc:
            raise VersioningFailed(
                f"cannot fetch {batch[0].relpath} (and {len(batch) - 1} more) from "
                f"{source.uri}: {describe(exc)}"
            ) from exc
        for file, target in zip(batch, targets, strict=True):
            size = target.stat().st_size
            sizes[file.relpath] = size
            bytes_done += size
        progress(Progress("fetching", len(sizes), files_total, bytes_done, bytes_total))
    data = root / DATA
    state.had_data = data.exists()
    if state.had_data:
        shutil.rmtree(root / PREVIOUS, ignore_errors=True)
        data.rename(root / PREVIOUS)
    staging.rename(data)
    state.swapped = True
    return sizes


def rollback(commands: Commands, root: Path, base: str, tag: str, state: Attempt) -> None:
    """Put the repository back exactly as it was before this attempt (best effort)."""
    with contextlib.suppress(Exception):
        if state.tagged:
            commands.git(root, "tag", "-d", tag)
    with contextlib.suppress(Exception):
        commands.git(root, "reset", "--quiet", "--hard", base)
        commands.git(root, "clean", "-fdq")
    shutil.rmtree(root / STAGING, ignore_errors=True)
    if state.swapped:
        shutil.rmtree(root / DATA, ignore_errors=True)
        if state.had_data:
            with contextlib.suppress(OSError):
                (root / PREVIOUS).rename(root / DATA)


def recover(commands: Commands, root: Path) -> None:
    """Undo what a crashed attempt left (a worker killed between two steps)."""
    previous = root / PREVIOUS
    if previous.exists():
        shutil.rmtree(root / DATA, ignore_errors=True)
        previous.rename(root / DATA)
    shutil.rmtree(root / STAGING, ignore_errors=True)
    head_message = commands.git(root, "log", "-1", "--format=%B")
    if head_message.startswith(COMMIT_PREFIX) and not commands.git(
        root, "tag", "--points-at", "HEAD"
    ):
        commands.git(root, "reset", "--quiet", "--hard", "HEAD~1")
    commands.git(root, "reset", "--quiet", "--hard")
    commands.git(root, "clean", "-fdq")
