"""The live timeline: Server-Sent Events of the reports folded about what a page shows.

The status consumer folds each ``llmops.status`` report and records it in ``status_history``
in the same transaction (:mod:`llmops_gateway.domain.status`); an open page follows that table.
The fold of this process wakes every open stream at once (:class:`Changes`), and each stream
also looks every second, so a report folded by another gateway replica appears too. A row
appears only once the fold committed, so the panels a page reloads after it (status, pipeline,
lineage) already show the change.

Each event's ``id`` is the highest row id sent: when the browser reconnects (``EventSource``
does so by itself) it sends ``Last-Event-ID`` and the stream resumes after it; rows committed
late (see :func:`timeline_stream`) are sent too, and the page ignores a row it already shows. A
stream ends after :data:`STREAM_S` so the credential is checked again on the reconnect (a
revoked key stops receiving within that time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import Request

from llmops_gateway.db.models import StatusHistory
from llmops_gateway.domain.browse import HistoryAfter

POLL_S: Final = 1.0
HEARTBEAT_S: Final = 15.0
STREAM_S: Final = 60.0
RETRY_MS: Final = 1_000
LATE_COMMIT_S: Final = 30.0
"""How long after its insert a report's row may still commit (another replica's fold)."""
MAX_ID_DIGITS: Final = 18
"""A ``Last-Event-ID`` longer than this is no row id (row ids fit a signed 64-bit integer)."""


class Changes:
    """Wakes the live streams of this process when its status consumer folded a report, and
    ends them when the gateway stops (an open stream would hold the shutdown up)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.notify()

    def notify(self) -> None:
        """Call on the event loop after a fold committed."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):  # no fold here meanwhile: look anyway
            await asyncio.wait_for(self._changed.wait(), timeout_s)


def as_message(row: StatusHistory) -> dict[str, object]:
    """What a page is told of one report (rendered with ``textContent``, never as HTML)."""
    return {
        "id": row.id,
        "event_id": row.event_id,
        "entity": row.entity,
        "entity_id": row.entity_id,
        "phase": row.phase,
        "reason": row.reason,
        "applied": row.applied,
        "source": row.source,
        "occurred_at": row.occurred_at.isoformat(),
    }


def resume_from(request: Request, rendered_after: int) -> int:
    """The row id to follow from: the reconnect's ``Last-Event-ID``, else what the page had."""
    last = request.headers.get("last-event-id", "")
    if last.isascii() and last.isdigit() and len(last) <= MAX_ID_DIGITS:
        return int(last)
    return max(rendered_after, 0)


async def timeline_stream(
    request: Request, read: HistoryAfter, changes: Changes, after: int
) -> AsyncIterator[str]:
    """The SSE body: ``status`` events after row ``after``, heartbeats, then an end.

    Each poll also reads the rows recorded in the last :data:`LATE_COMMIT_S` and sends those
    not sent yet: ids are taken when a row is inserted, so with several gateways a row with a
    smaller id can commit after a larger one was sent (the page drops a row it already has)."""
    yield f"retry: {RETRY_MS}\n\n"
    started = last_sent = time.monotonic()
    sent: set[int] = set()
    while time.monotonic() - started < STREAM_S and not await request.is_disconnected():
        if changes.closed:
            return
        since = datetime.now(UTC) - timedelta(seconds=LATE_COMMIT_S)
        for row in await asyncio.to_thread(read, after, since):
            if row.id in sent:
                continue
            sent.add(row.id)
            after = max(after, row.id)
            yield f"id: {after}\nevent: status\ndata: {json.dumps(as_message(row))}\n\n"
            last_sent = time.monotonic()
        if time.monotonic() - last_sent >= HEARTBEAT_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await changes.wait(POLL_S)
