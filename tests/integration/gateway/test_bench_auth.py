"""A smoke run of bench/auth.py (so it cannot rot): it completes, prints its table and writes
every figure; the timings themselves are for docs/benchmarks.md, not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bench import smoke_run

pytestmark = pytest.mark.integration


def test_the_auth_benchmark_runs(tmp_path: Path) -> None:
    stdout, figures = smoke_run("auth.py", tmp_path)
    lines = stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("credential"))) :]
    assert [line.split()[0] for line in table[1:]] == [
        "none",
        "configured_key",
        "stored_key",
        "oidc_jwt",
    ]
    assert figures["requests"] == 20
    for name in ("configured_key", "stored_key", "oidc_jwt"):
        assert set(figures[name]) == {"check_us", "request_us", "overhead_us"}
        assert figures[name]["check_us"] > 0
