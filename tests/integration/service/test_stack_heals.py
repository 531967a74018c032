"""``llmops up`` heals: a process that dies is started again after a growing wait, and one
that keeps dying stops the stack with its name (real child processes; the policy's times
shrunk)."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from llmops_cli.restarts import RestartPolicy
from llmops_cli.stack import Stack, StackOptions

pytestmark = pytest.mark.integration


def quick(stack: Stack, **policy: float) -> None:
    for entry in stack._processes:
        entry.restarts = RestartPolicy(first_delay_s=0.05, max_delay_s=0.1, **policy)


async def test_a_process_that_dies_once_is_restarted_and_said_so(tmp_path: Path) -> None:
    out = io.StringIO()
    stack = Stack(StackOptions(data_dir=tmp_path), Console(file=out, width=500))
    marker = tmp_path / "crashed-once"
    script = (
        "import pathlib, sys, time\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "if not m.exists():\n"
        "    m.touch(); print('crashing', flush=True); sys.exit(3)\n"
        "print('up again', flush=True); time.sleep(60)\n"
    )
    await stack._spawn("worker", [sys.executable, "-c", script], {}, "cyan")
    quick(stack)
    stop = asyncio.Event()
    watch = asyncio.create_task(stack._watch(stop, tick_s=0.05))
    try:
        for _ in range(200):
            if "up again" in out.getvalue():
                break
            await asyncio.sleep(0.05)
        log = out.getvalue()
        assert "worker exited with code 3; restarting it" in log
        assert "worker restarted" in log
        assert "up again" in log
        assert stack._processes[0].process.returncode is None  # running again
        assert not watch.done()  # the stack goes on
    finally:
        stop.set()
        assert await watch == 0
        await stack._stop_all()


async def test_a_crash_loop_stops_the_stack_naming_the_process(tmp_path: Path) -> None:
    out = io.StringIO()
    stack = Stack(StackOptions(data_dir=tmp_path), Console(file=out, width=500))
    await stack._spawn("registry", [sys.executable, "-c", "raise SystemExit(2)"], {}, "cyan")
    quick(stack, crash_loop_exits=3)
    code = await asyncio.wait_for(stack._watch(asyncio.Event(), tick_s=0.05), timeout=30)
    await stack._stop_all()
    assert code == 1
    log = out.getvalue()
    assert log.count("registry restarted") == 2
    assert "registry keeps exiting (3 times in 120s, last with code 2): a crash loop" in log
