"""A stand-in for the trainer's processes, for testing how the local backend orchestrates them.

The local backend puts the directory of ``LOCAL_PYTHON`` first on the stages' ``PATH``; this
module writes a ``python`` and a ``torchrun`` there that behave like the stages as a plan file
says (sleep, exit code, output lines), record how they were called (argv, the environment the
pod would get), and write what the real stages write for later ones (register's
``model-version.json``). ``python -c`` (the run-resolving wrapper) runs the real interpreter,
so the wrapper is exercised as rendered. The real trainer runs in tests/integration/trainer and
in the end-to-end loop; here the subject is the orchestration (order, retries, kill, restart).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = r"""#!{python}
import json, os, sys, time
from pathlib import Path

args = sys.argv[1:]
if args[:1] == ["-c"]:
    os.execv({python!r}, [{python!r}, *args])
stage = args[args.index("-m") + 1].rsplit(".", 1)[1]
root = Path(os.environ["FAKE_TRAINER_DIR"])
behaviour = json.loads((root / "plan.json").read_text()).get(stage, {{}})
attempt_file = root / f"{{stage}}.attempts"
attempt = int(attempt_file.read_text()) + 1 if attempt_file.exists() else 1
attempt_file.write_text(str(attempt))
keys = ("MLFLOW_RUN_ID", "LLMOPS_JOB_ID", "LLMOPS_OUTPUTS_DIR", "MLFLOW_TRACKING_URI", "PATH",
        "API_KEYS", "DATABASE_URL", "PYTHONUNBUFFERED")
start = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]
call = {{"stage": stage, "attempt": attempt, "tool": Path(sys.argv[0]).name, "argv": args,
        "env": {{k: os.environ.get(k) for k in keys}}, "pid": os.getpid(), "start": start,
        "pgid": os.getpgrp(), "cwd": os.getcwd()}}
with (root / "calls.jsonl").open("a") as out:
    out.write(json.dumps(call) + "\n")
for line in behaviour.get("lines", [f"{{stage}}: working"]):
    print(line, flush=True)
sleep = behaviour.get("sleep_first" if attempt == 1 else "sleep", behaviour.get("sleep", 0))
time.sleep(sleep)
if stage == "register" and behaviour.get("exit", 0) == 0:
    model = {{"name": "sft-model", "version": "3", "run_id": "run-1",
             "source": "mlflow-artifacts:/1/run-1/artifacts/model",
             "storage_uri": "/data/mlflow/artifacts/1/run-1/artifacts/model"}}
    text = behaviour.get("model_version", json.dumps(model))
    Path(os.environ["LLMOPS_OUTPUTS_DIR"], "model-version.json").write_text(text)
sys.exit(behaviour.get("exit", 0))
"""


@dataclass
class FakeTrainer:
    """The fake ``python``/``torchrun`` in ``bin`` and what they recorded."""

    root: Path

    @property
    def python(self) -> str:
        """What the local backend gets as ``LOCAL_PYTHON``."""
        return str(self.root / "bin" / "python")

    def plan(self, **stages: dict[str, Any]) -> None:
        """How each stage behaves: ``exit``, ``sleep``, ``sleep_first``, ``lines``, and for
        register the text of ``model_version`` (default: a valid record)."""
        (self.root / "plan.json").write_text(json.dumps(stages))

    def calls(self) -> list[dict[str, Any]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def environ(self) -> dict[str, str]:
        """The worker environment the runner starts from (the test's own, plus the plan dir,
        passed through by name, and two of the platform's secrets, which must not reach a
        stage)."""
        return {
            **os.environ,
            "FAKE_TRAINER_DIR": str(self.root),
            "API_KEYS": "secret-key",
            "DATABASE_URL": "sqlite:///secret.db",
        }

    passthrough = ("FAKE_TRAINER_DIR",)

    async def wait_for_call(self, stage: str, *, timeout_s: float = 20) -> dict[str, Any]:
        """The stage's latest call, once it started (the runner keeps running meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [c for c in self.calls() if c["stage"] == stage]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError(f"stage {stage} never started")


def make_fake_trainer(root: Path) -> FakeTrainer:
    """Write the fake executables under ``root/bin``."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "torchrun"):
        path = bin_dir / tool
        path.write_text(SCRIPT.format(python=sys.executable))
        path.chmod(0o755)
    fake = FakeTrainer(root)
    fake.plan()
    return fake
