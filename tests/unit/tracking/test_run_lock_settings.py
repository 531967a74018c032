"""``RUN_LOCK_TTL_S``: the job's run lock must outlast one MLflow call, or no run is ever made
(a create is only sent while the lease has a whole call left)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmops_tracking.config import TrackingSettings, mlflow_call_budget_s

pytestmark = pytest.mark.unit


def settings(**values: object) -> TrackingSettings:
    return TrackingSettings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_longest_mlflow_call_counts_every_attempt_and_the_backoff() -> None:
    assert mlflow_call_budget_s(10, 0) == 10
    assert mlflow_call_budget_s(10, 2) == 30 + (2 + 1) + (4 + 1)
    assert mlflow_call_budget_s(1, 10) == 11 + sum(min(2 * 2**i + 1, 120) for i in range(10))


def test_the_default_ttl_is_30_s_or_twice_the_longest_call() -> None:
    assert settings().run_lock_ttl == 30
    assert settings(mlflow_http_request_max_retries=3).run_lock_ttl == 2 * (40 + 3 + 5 + 9)
    assert settings(run_lock_ttl_s=16).run_lock_ttl == 16


def test_an_empty_ttl_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_LOCK_TTL_S", " ")
    assert TrackingSettings(_env_file=None).run_lock_ttl == 30  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "values",
    [
        {"run_lock_ttl_s": 15},
        {"run_lock_ttl_s": 0},
        {"run_lock_ttl_s": 60, "mlflow_http_request_timeout": 40},
    ],
)
def test_a_ttl_shorter_than_one_and_a_half_calls_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"RUN_LOCK_TTL_S|greater than 0"):
        settings(**values)
