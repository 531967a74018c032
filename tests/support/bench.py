"""Smoke runs of the ``bench/`` scripts (so none can rot): the script with ``--smoke`` and
``--json``, its exit, its printed table and its figures. Timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]


def smoke_run(script: str, tmp_path: Path, *args: str, timeout_s: float = 120) -> tuple[str, Any]:
    """Run ``bench/<script>`` in smoke mode; its stdout and its JSON figures."""
    out = tmp_path / f"{Path(script).stem}.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke", "--json", str(out), *args],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())
