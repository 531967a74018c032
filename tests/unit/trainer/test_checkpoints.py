"""Which checkpoint a retried train resumes from: the newest complete one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops_trainer.checkpoints import last_complete, place_for, step_of

pytestmark = pytest.mark.unit


def checkpoint(root: Path, step: int, *, state: str | None = "ok") -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if state == "ok":
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    elif state is not None:
        (path / "trainer_state.json").write_text(state)
    return path


def test_the_newest_complete_checkpoint_wins_and_incomplete_ones_go(tmp_path: Path) -> None:
    checkpoint(tmp_path, 10)
    checkpoint(tmp_path, 20)
    checkpoint(tmp_path, 30, state=None)  # killed before its state was written
    checkpoint(tmp_path, 40, state='{"global_st')  # killed while writing it
    assert last_complete(tmp_path) == tmp_path / "checkpoint-20"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-20"]


def test_no_checkpoint(tmp_path: Path) -> None:
    assert last_complete(tmp_path) is None
    assert last_complete(tmp_path / "missing") is None


def test_a_state_of_another_step_is_not_complete(tmp_path: Path) -> None:
    path = checkpoint(tmp_path, 5, state=json.dumps({"global_step": 4}))
    assert step_of(path) is None
    assert step_of(checkpoint(tmp_path, 6)) == 6


def test_checkpoints_are_a_sibling_of_the_output(tmp_path: Path) -> None:
    local = place_for(str(tmp_path / "jobs" / "j1" / "model"), tmp_path / "cache")
    assert local.local == tmp_path / "jobs" / "j1" / "checkpoints"
    assert local.remote is None
    remote = place_for("s3://bucket/jobs/j1/model/", tmp_path / "cache")
    assert remote.remote == "s3://bucket/jobs/j1/checkpoints"
    assert remote.local.parent == tmp_path / "cache" / "checkpoints"
