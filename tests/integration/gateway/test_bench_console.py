"""A smoke run of bench/console.py (so it cannot rot): it seeds 200 jobs, serves the gateway,
signs in a real Chromium and measures each page's first paint; the timings are for
docs/benchmarks.md, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bench import smoke_run

pytestmark = pytest.mark.integration

PAGES = ("ceiling", "jobs", "jobs_failed", "job")


def test_the_console_benchmark_runs(tmp_path: Path, redis_url: str) -> None:
    stdout, figures = smoke_run("console.py", tmp_path, "--redis-url", redis_url, timeout_s=240)
    assert "/console/jobs?status=Failed" in stdout
    assert "goal: first paint p95 < 1000 ms" in stdout
    assert figures["jobs"] == 200
    assert sum(figures["status_counts"].values()) == 200
    assert figures["pipelines"] > 0
    assert figures["database"] == "sqlite"
    for page in PAGES:
        for metric in ("first_paint", "dom_content_loaded", "server"):
            assert figures[f"{page}_{metric}_ms_median"] > 0
            assert figures[f"{page}_{metric}_ms_p95"] >= figures[f"{page}_{metric}_ms_median"]
        assert figures[f"{page}_first_paint_ms_cold"] > 0
    assert isinstance(figures["goal_met"], bool)
