"""Running reports published while a version or restore is in progress.

The final report of a handler is returned to the consumer runtime, which commits it atomically
with the ack. Progress is different: it is published directly, mid-handler, through the
service's own :class:`~llmops_shared.streams.Publisher`, best effort (a lost progress report
loses nothing: the final report follows, with a greater ``seq``). Backends call the reporter
from their worker thread; it builds the event there (its ``seq`` is the observation time, so it
is always older than the final report) and hands the publish to the event loop. Reports are
throttled: one per ``interval_s``, plus one at every stage change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable

from llmops_shared.events import Envelope
from llmops_shared.logging import get_logger
from llmops_versioning.ports import Progress, StatusSink

_log = get_logger(__name__)


class ProgressReporter:
    """A thread-safe, throttled :data:`~llmops_versioning.ports.ProgressCallback`."""

    def __init__(
        self,
        sink: StatusSink | None,
        loop: asyncio.AbstractEventLoop,
        build: Callable[[Progress], Envelope | None],
        *,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._loop = loop
        self._build = build
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._last = float("-inf")
        self._pending: list[concurrent.futures.Future[None]] = []
        self.published = 0

    def __call__(self, progress: Progress) -> None:
        if self._sink is None:
            return
        now = self._clock()
        with self._lock:
            if progress.stage == self._stage and now - self._last < self._interval_s:
                return
            self._stage, self._last = progress.stage, now
            self._pending = [f for f in self._pending if not f.done()]
        try:
            envelope = self._build(progress)
            if envelope is None:
                return
            future = asyncio.run_coroutine_threadsafe(self._publish(envelope), self._loop)
        except Exception as exc:  # noqa: BLE001 - progress must never break the work
            _log.warning("progress_not_published", error=repr(exc))
            return
        with self._lock:
            self._pending.append(future)
            self.published += 1

    async def _publish(self, envelope: Envelope) -> None:
        assert self._sink is not None
        try:
            await self._sink.publish(envelope)
        except Exception as exc:  # noqa: BLE001 - best effort by design
            _log.warning("progress_not_published", error=repr(exc))

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for the progress reports still being published."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=timeout_s)
