"""When the local stack restarts a process that died, and when it gives up.

A worker that crashes once (a bug hit by one event, the machine short of memory, a
``kill -9``) should not take the whole stack down: ``llmops up`` starts it again after a
short wait that doubles with each recent exit (:data:`FIRST_DELAY_S` up to
:data:`MAX_DELAY_S`). A process that keeps dying is another matter: restarting it forever
would hide the fault under a scrolling log, so :data:`CRASH_LOOP_EXITS` exits within
:data:`WINDOW_S` stop the stack with its name. Exits older than the window are forgotten, so
a process that ran well for a while starts afresh.

Pure (the clock is passed in), so the policy is tested without processes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

FIRST_DELAY_S: Final = 1.0
MAX_DELAY_S: Final = 30.0
WINDOW_S: Final = 120.0
CRASH_LOOP_EXITS: Final = 5


@dataclass(frozen=True)
class Verdict:
    """What to do about one exit: restart after ``delay_s``, or give up (a crash loop)."""

    restart: bool
    delay_s: float
    recent_exits: int


@dataclass
class RestartPolicy:
    """The exits of one process and what each calls for."""

    window_s: float = WINDOW_S
    crash_loop_exits: int = CRASH_LOOP_EXITS
    first_delay_s: float = FIRST_DELAY_S
    max_delay_s: float = MAX_DELAY_S
    exits: deque[float] = field(default_factory=deque)

    def exited(self, now: float) -> Verdict:
        """Record an exit at ``now`` (monotonic seconds) and judge it."""
        self.exits.append(now)
        while self.exits and now - self.exits[0] > self.window_s:
            self.exits.popleft()
        recent = len(self.exits)
        if recent >= self.crash_loop_exits:
            return Verdict(restart=False, delay_s=0.0, recent_exits=recent)
        delay = min(self.first_delay_s * 2 ** (recent - 1), self.max_delay_s)
        return Verdict(restart=True, delay_s=delay, recent_exits=recent)
