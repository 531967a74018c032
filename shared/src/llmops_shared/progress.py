"""Throttled, best-effort progress reports published while a handler is still working.

A handler's final report is returned to the consumer runtime, which commits it atomically with
the ack. Progress is different: it is published directly, mid-handler, through the service's
:class:`~llmops_shared.streams.StatusSink`, and a lost one loses nothing (the final report
follows with a greater ``seq``). Backends call the reporter from their worker threads (a
download, a ``dvc push``); the event is built there, so its ``seq`` is the observation time and
always older than the final report, and the publish is handed to the event loop. Reports are
throttled to one per ``interval_s``, plus one at every stage change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from llmops_shared.events import Envelope
from llmops_shared.logging import get_logger
from llmops_shared.streams import StatusSink

_log = get_logger(__name__)


class Staged(Protocol):
    """A progress value: its ``stage`` decides when a report goes out regardless of time."""

    @property
    def stage(self) -> str: ...


P = TypeVar("P", bound=Staged)


class ProgressReporter(Generic[P]):
    """A thread-safe, throttled progress callback; ``async with`` drains it on exit.

    ``build`` turns a progress value into the status event to publish (None: not reported).
    Without a sink (tests, a backend run outside a worker) every call is a no-op.
    """

    def __init__(
        self,
        sink: StatusSink | None,
        build: Callable[[P], Envelope | None],
        *,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self._build = build
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._last = float("-inf")
        self._pending: list[concurrent.futures.Future[None]] = []
        self.published = 0

    def __call__(self, progress: P) -> None:
        """Report ``progress`` unless one of the same stage went out within ``interval_s``.
        Safe from any thread; never blocks on Redis, never raises."""
        if self._sink is None:
            return
        now = self._clock()
        with self._lock:
            if progress.stage == self._stage and now - self._last < self._interval_s:
                return
            self._stage, self._last = progress.stage, now
            self._pending = [future for future in self._pending if not future.done()]
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
        """Wait (bounded) for the reports still being published, so the final report, built
        after this, is the last one on the stream."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=timeout_s)

    async def __aenter__(self) -> ProgressReporter[P]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()
