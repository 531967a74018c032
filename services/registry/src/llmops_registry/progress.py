"""Throttled, best-effort Running reports while an import runs.

The backend calls :meth:`ProgressReporter.update` from whatever thread does the transfer; that
only records the latest :class:`ImportProgress` and wakes a task on the event loop, which
publishes it directly to the status stream (not through the consumer's batch commit: the
import is still running) at most once per ``interval_s``. A failed publish is logged and
forgotten: progress is informative, the final report returned by the handler is what counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType

from llmops_shared.events.payloads.catalog import ImportProgress
from llmops_shared.logging import get_logger

Publish = Callable[[ImportProgress], Awaitable[None]]

_log = get_logger(__name__)


class ProgressReporter:
    """An async context manager: ``update`` from any thread, reports go out from the loop."""

    def __init__(self, publish: Publish | None, *, interval_s: float) -> None:
        self._publish = publish
        self._interval_s = interval_s
        self._latest: ImportProgress | None = None
        self._sent: ImportProgress | None = None
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    async def __aenter__(self) -> ProgressReporter:
        if self._publish is not None:
            self._task = asyncio.create_task(self._run(), name="import-progress")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def update(self, progress: ImportProgress) -> None:
        """Record the latest progress; safe from any thread, never blocks, never raises."""
        self._latest = progress
        with contextlib.suppress(RuntimeError):  # a closed loop: the import is over anyway
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        assert self._publish is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            latest = self._latest
            if latest is None or latest == self._sent:
                continue
            try:
                await self._publish(latest)
                self.published += 1
            except Exception as exc:  # noqa: BLE001 - best effort: the final report is what counts
                _log.warning("progress_report_failed", error=f"{type(exc).__name__}: {exc}")
            self._sent = latest
            await asyncio.sleep(self._interval_s)
