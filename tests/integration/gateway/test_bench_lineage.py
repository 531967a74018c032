"""A smoke run of bench/lineage.py (so it cannot rot): it seeds its chain, answers the three
queries and writes every figure; the timings are for docs/benchmarks.md, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]


def test_the_lineage_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "lineage.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lineage.py"), "--smoke", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "endpoint_up" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["jobs"] == 20
    # the version, 20 jobs with their pipeline, run, model version and commit, one endpoint
    assert figures["nodes_down_from_the_version"] == 1 + 20 * 5 + 1
    assert figures["endpoint_up_ms"] > 0
