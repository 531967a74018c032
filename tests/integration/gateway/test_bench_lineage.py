"""A smoke run of bench/lineage.py (so it cannot rot): it seeds its chain, answers the three
queries and writes every figure; the timings are for docs/benchmarks.md, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bench import smoke_run

pytestmark = pytest.mark.integration


def test_the_lineage_benchmark_runs(tmp_path: Path) -> None:
    stdout, figures = smoke_run("lineage.py", tmp_path)
    assert "endpoint_up" in stdout
    assert figures["jobs"] == 20
    # the version, 20 jobs with their pipeline, run, model version and commit, one endpoint
    assert figures["nodes_down_from_the_version"] == 1 + 20 * 5 + 1
    assert figures["endpoint_up_ms"] > 0
