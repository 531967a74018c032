"""A train step retried after SIGKILL resumes from its last complete checkpoint; the retry
runs under ``torchrun`` (CPU, gloo), as the pipeline launches train."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from llmops_trainer import prepare_data
from llmops_trainer.checkpoints import step_of

from integration.trainer.conftest import NewJob
from integration.trainer.helpers import history, stage_env, subprocess_env
from support.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

TOTAL_STEPS = 90  # 100 records: 90 train rows, batch 1, one epoch
CHECKPOINT_STEPS = 10


def first_complete_checkpoint(directory: Path, process: subprocess.Popen[bytes]) -> int:
    """Wait until train has written a complete checkpoint; its step."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "train finished before it could be killed"
        for checkpoint in directory.glob("checkpoint-*") if directory.is_dir() else []:
            if (step := step_of(checkpoint)) is not None:
                return step
        time.sleep(0.02)
    raise AssertionError("no checkpoint within 120 s")


def test_killed_train_resumes_from_its_last_checkpoint_under_torchrun(
    new_job: NewJob,
    mlflow_client: MlflowClient,
    mlflow_server: MlflowServer,
    tmp_path: Path,
) -> None:
    job = new_job("SFT", records=100, batch_size=1)
    assert job.run_id is not None
    assert prepare_data.main(job.prepare_args()) == 0
    env = subprocess_env(
        stage_env(job, tracking_uri=mlflow_server.url, artifacts=mlflow_server.root / "artifacts")
    )
    args = job.train_args(f"--checkpoint-steps={CHECKPOINT_STEPS}")

    with (tmp_path / "first.log").open("wb") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "llmops_trainer.train", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            saved = first_complete_checkpoint(job.checkpoints, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert not job.model.exists()  # nothing published by the killed run
    resumable = max(s for p in job.checkpoints.glob("checkpoint-*") if (s := step_of(p)))
    assert resumable >= saved

    torchrun = shutil.which("torchrun", path=env["PATH"])
    assert torchrun is not None
    second = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nnodes=1",
            "--nproc_per_node=1",
            "-m",
            "llmops_trainer.train",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    match = re.search(r"resuming from checkpoint (\S+) \(step (\d+) of (\d+)\)", second.stderr)
    assert match is not None, second.stderr[-3000:]
    assert int(match.group(2)) == resumable
    assert int(match.group(3)) == TOTAL_STEPS

    marker = json.loads((job.model / "llmops-model.json").read_text())
    assert marker["global_step"] == TOTAL_STEPS
    assert marker["resumed_from_step"] == resumable
    run = mlflow_client.get_run(job.run_id)
    assert run.data.tags["llmops.resumed_from_step"] == str(resumable)
    assert run.data.metrics["train_global_step"] == TOTAL_STEPS
    steps = [step for step, _ in history(mlflow_client, job.run_id, "loss")]
    assert steps[-1] == TOTAL_STEPS
    assert set(range(resumable + 1, TOTAL_STEPS + 1)) <= set(steps)
