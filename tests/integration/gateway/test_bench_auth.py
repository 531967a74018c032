"""A smoke run of bench/auth.py (so it cannot rot): it completes, prints its table and writes
every figure; the timings themselves are for docs/benchmarks.md, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]


def test_the_auth_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "auth.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "auth.py"), "--smoke", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("credential"))) :]
    rows = [line.split()[0] for line in table[1:]]
    assert rows == ["none", "configured_key", "stored_key", "oidc_jwt"]
    figures = json.loads(out.read_text())
    assert figures["requests"] == 20
    for name in ("configured_key", "stored_key", "oidc_jwt"):
        assert set(figures[name]) == {"check_us", "request_us", "overhead_us"}
        assert figures[name]["check_us"] > 0
