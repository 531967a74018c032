"""Stopping stage processes: is anything of a stage alive, and stop a set of them in time.

A stage is its shell wrapper (the session leader) and what it started (the trainer, torchrun's
workers). Alive means the wrapper, identified by pid and start time, or, in this boot, any
member left of its process group (a trainer whose wrapper was killed). Stopping is SIGTERM to
each group, a grace period, then SIGKILL to whatever is left: a trainer gets the chance to
exit cleanly, and none survives.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence

from llmops_shared.logging import get_logger
from llmops_workflow.local import process
from llmops_workflow.local.state import StageState

_log = get_logger(__name__)


def stage_alive(stage: StageState) -> bool:
    """Whether a process of the stage is alive (see the module docstring)."""
    if stage.pid is None:
        return False
    if process.is_running(stage.pid, stage.pid_start):
        return True
    return process.our_group_alive(stage.pid, stage.boot_id)


async def stop_stages(
    stages: Sequence[tuple[str, StageState]], *, grace_s: float, reap: Callable[[], None]
) -> None:
    """SIGTERM every ``(pipeline, stage)``'s group, wait up to ``grace_s`` (calling ``reap``
    so finished children do not linger as zombies), then SIGKILL what is left."""
    for _, stage in stages:
        process.signal_group(stage.pid or 0, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(stage_alive(s) for _, s in stages):
        await asyncio.sleep(0.1)
        reap()
    for pipeline, stage in stages:
        if stage_alive(stage):
            _log.warning("local_stage_killed", pipeline=pipeline, stage=stage.name)
            process.signal_group(stage.pid or 0, signal.SIGKILL)
