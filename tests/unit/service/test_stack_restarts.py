"""``llmops up``'s restart policy: a growing wait per recent exit, a crash loop gives up."""

from __future__ import annotations

import pytest

from llmops_cli.restarts import RestartPolicy

pytestmark = pytest.mark.unit


def test_the_wait_doubles_with_each_recent_exit_then_gives_up() -> None:
    policy = RestartPolicy(window_s=60, crash_loop_exits=4, first_delay_s=1, max_delay_s=3)
    verdicts = [policy.exited(now) for now in (0, 1, 2)]
    assert [v.delay_s for v in verdicts] == [1, 2, 3]  # capped at max_delay_s
    assert all(v.restart for v in verdicts)
    crash_loop = policy.exited(3)
    assert not crash_loop.restart
    assert crash_loop.recent_exits == 4


def test_exits_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(window_s=10, crash_loop_exits=3, first_delay_s=1)
    policy.exited(0)
    policy.exited(1)
    verdict = policy.exited(30)  # ran well for a while: starts afresh
    assert verdict.restart
    assert (verdict.recent_exits, verdict.delay_s) == (1, 1)
