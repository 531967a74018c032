"""Checkpoints and resume: a retried train continues where the killed one stopped.

Checkpoints live beside the output, at ``<dirname(--output-uri)>/checkpoints`` (for the
pipeline's layout: ``<root>/jobs/<job_id>/checkpoints``). A local directory is used in place;
for an object store, training writes to a local work directory, every checkpoint is uploaded
as it is saved (its ``trainer_state.json`` last), and a retried step downloads the newest
complete one before it starts.

A checkpoint is *complete* when its ``trainer_state.json`` (which transformers writes after
the weights, optimizer and RNG states) parses and names the checkpoint's step. A newer
incomplete one (the process was killed while saving) is removed, and training resumes from
the newest complete one with transformers' ``resume_from_checkpoint``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from llmops_trainer import storage

_log = logging.getLogger(__name__)

STATE_FILE: Final = "trainer_state.json"
CHECKPOINT_DIR: Final = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class CheckpointPlace:
    """Where this job's checkpoints are: ``local`` is what the Trainer writes, ``remote``
    the object-store prefix they are mirrored to (None when ``local`` is the place itself)."""

    uri: str
    local: Path
    remote: str | None


def place_for(output_uri: str, cache_dir: Path) -> CheckpointPlace:
    """The checkpoint place of a train writing ``output_uri``."""
    uri = storage.join(storage.parent(output_uri), "checkpoints")
    if storage.is_local(uri):
        return CheckpointPlace(uri, storage.local_path(uri), None)
    key = hashlib.sha256(uri.encode()).hexdigest()[:24]
    return CheckpointPlace(uri, cache_dir / "checkpoints" / key, uri)


def step_of(checkpoint: Path) -> int | None:
    """The global step a complete checkpoint holds, else None."""
    match = CHECKPOINT_DIR.match(checkpoint.name)
    if match is None:
        return None
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if step == int(match.group(1)) else None


def last_complete(directory: Path) -> Path | None:
    """The newest complete checkpoint in ``directory``; newer incomplete ones are removed."""
    if not directory.is_dir():
        return None
    while (last := get_last_checkpoint(str(directory))) is not None:  # type: ignore[no-untyped-call]
        path = Path(last)
        if step_of(path) is not None:
            return path
        _log.warning("removing the incomplete checkpoint %s (killed while saving?)", path)
        shutil.rmtree(path)
    return None


def download_newest(place: CheckpointPlace) -> None:
    """Mirror the newest complete remote checkpoint into the local directory (a no-op for a
    local place, or when the local copy is already as new)."""
    if place.remote is None or not storage.exists(place.remote):
        return
    remote_steps = []
    for relpath, _ in storage.list_files(place.remote):
        parts = relpath.split("/")
        if len(parts) == 2 and parts[1] == STATE_FILE and (m := CHECKPOINT_DIR.match(parts[0])):
            remote_steps.append(int(m.group(1)))
    if not remote_steps:
        return
    newest = max(remote_steps)
    local = last_complete(place.local)
    if local is not None and (step_of(local) or 0) >= newest:
        return
    target = place.local / f"checkpoint-{newest}"
    if target.exists():
        shutil.rmtree(target)
    _log.info("downloading checkpoint %d from %s", newest, place.remote)
    storage.download_dir(storage.join(place.remote, target.name), target)


class CheckpointUpload(TrainerCallback):
    """Mirror every checkpoint the Trainer saves to the remote place, ``trainer_state.json``
    last, so a remote checkpoint with a state file is complete."""

    def __init__(self, place: CheckpointPlace) -> None:
        self.place = place

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.place.remote is None or not state.is_world_process_zero:
            return
        name = f"checkpoint-{state.global_step}"
        source = self.place.local / name
        if not source.is_dir():
            return
        _log.info("uploading %s to %s", name, self.place.remote)
        storage.upload_dir(source, storage.join(self.place.remote, name), last=[STATE_FILE])
        kept = {p.name for p in self.place.local.glob("checkpoint-*")}
        self._prune(kept)

    def _prune(self, kept: set[str]) -> None:
        """Remove remote checkpoints the Trainer rotated away locally."""
        assert self.place.remote is not None
        location = storage.locate(self.place.remote)
        for path in location.fs.ls(location.path, detail=False):
            name = str(path).rstrip("/").rsplit("/", 1)[-1]
            if CHECKPOINT_DIR.match(name) and name not in kept:
                location.fs.rm(str(path), recursive=True)
