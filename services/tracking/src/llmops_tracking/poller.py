"""The reconciliation poller: every model version in MLflow ends up on ``llmops.models``.

Webhooks are fast but best effort (MLflow gives up after a few retries, caches its webhook list
for up to a minute, and sends nothing while the receiver is down). Every ``POLLING_INTERVAL``
seconds this task reads the versions created since its watermark and publishes a
``ModelVersionRegistered`` for each one not yet published, under the same deterministic event
id as the webhook, so a version delivered both ways is one effect for github-sync.

State in Redis, under the stream namespace:

* ``tracking:model-versions:watermark``: the ``creation_timestamp`` (ms) up to which every
  version has been published (advanced only after a whole pass succeeded), never beyond the
  local clock plus the look-back (a version stamped in the future by a skewed MLflow clock
  must not push it past the versions created after it);
* ``tracking:model-versions:published``: a sorted set of ``<name>/<version>@<created ms>``
  scored by creation time: the versions already published at or after
  ``watermark - lookback``. It holds the ties at the watermark's exact millisecond, and with
  ``MODEL_VERSIONS_LOOKBACK_S`` (300 s) also a version whose row MLflow committed after a newer
  one was already read (the creation time in the member tells a version from an earlier one of
  the same number, deleted with its model). The receiver
  adds what it publishes.

A pass reads ``versions created >= watermark - lookback`` newest first (one or two MLflow
requests), publishes the missing ones oldest first in batches, then moves the watermark.
MLflow or Redis down: the pass fails, is logged and reported at ``GET /mlflow/poller``, and the
next pass resumes where the last one stopped; the task itself never ends before the worker.
A version MLflow refuses to read on its own (permission denied, say), or one that cannot be
expressed as an event (a path-like run id, a source that is not a URI), is logged, skipped and
counted instead: one bad version does not stop the others. A run MLflow refuses to read
costs only the event's ``experiment_id`` (see the registry adapter).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import redis.asyncio as aioredis

from llmops_shared.events import Envelope
from llmops_shared.logging import get_logger
from llmops_shared.streams.errors import describe
from llmops_shared.streams.publisher import StatusSink
from llmops_tracking.model_versions import (
    ModelRegistry,
    ModelVersionRecord,
    PublishedVersions,
    VersionUnreadable,
    chunks,
    registered_event,
    state_key,
)

BATCH: Final = 100
SKIPPED_SHOWN: Final = 20
"""How many of the last skipped versions ``GET /mlflow/poller`` lists."""

_log = get_logger(__name__)


@dataclass
class PassResult:
    """What one pass did."""

    scanned: int = 0
    published: int = 0
    skipped: int = 0
    watermark: int | None = None
    skipped_versions: list[dict[str, str]] = field(default_factory=list)
    """``{"model_version", "reason"}`` of each version skipped as unreadable/unpublishable."""


@dataclass
class PollerStatus:
    """The last pass, for ``GET /mlflow/poller``."""

    interval_s: float
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    scanned: int = 0
    published: int = 0
    skipped: int = 0
    error: str | None = None
    watermark: int | None = None
    passes: int = 0
    failures: int = 0
    published_total: int = 0
    skipped_total: int = 0
    last_skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "interval_s": self.interval_s,
            "last_run": {
                "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at),
                "duration_ms": self.duration_ms,
                "scanned": self.scanned,
                "published": self.published,
                "skipped": self.skipped,
                "error": self.error,
            },
            "watermark_ms": self.watermark,
            "watermark": iso(
                datetime.fromtimestamp(self.watermark / 1000, tz=UTC) if self.watermark else None
            ),
            "passes": self.passes,
            "failures": self.failures,
            "published_total": self.published_total,
            "skipped_total": self.skipped_total,
            "last_skipped": list(self.last_skipped),
        }


class ModelVersionPoller:
    """Publishes the model versions the webhook did not (see the module docstring)."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        redis: aioredis.Redis,
        publisher: StatusSink,
        namespace: str,
        interval_s: float,
        backfill: bool = True,
        lookback_s: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._redis = redis
        self._publisher = publisher
        self._watermark_key = state_key(namespace, "watermark")
        self._published = PublishedVersions(redis, namespace)
        self._backfill = backfill
        self._lookback_ms = lookback_s * 1000
        self._clock = clock
        self._skew_logged: int | None = None
        self.status = PollerStatus(interval_s=interval_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop``; a failed pass is logged and the next one retries."""
        while not stop.is_set():
            await self.run_once_reported()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.status.interval_s)
            except TimeoutError:
                continue

    async def run_once_reported(self) -> PassResult | None:
        """One pass, with its outcome in :attr:`status` and the log; never raises."""
        status = self.status
        status.started_at = datetime.now(UTC)
        started = time.perf_counter()
        result: PassResult | None = None
        try:
            result = await self.run_once()
        except Exception as exc:  # noqa: BLE001 - MLflow or Redis down: retry next interval
            status.error = describe(exc)
            status.failures += 1
            status.scanned = status.published = status.skipped = 0
            _log.warning("model_version_poll_failed", error=status.error)
        else:
            status.error = None
            status.scanned, status.published = result.scanned, result.published
            status.skipped = result.skipped
            status.watermark = result.watermark
            status.published_total += result.published
            status.skipped_total += result.skipped
            if result.skipped_versions:
                shown = status.last_skipped + result.skipped_versions
                status.last_skipped = shown[-SKIPPED_SHOWN:]
            log = _log.info if result.published else _log.debug
            log(
                "model_version_poll_done",
                scanned=result.scanned,
                published=result.published,
                skipped=result.skipped,
                watermark=result.watermark,
            )
        status.passes += 1
        status.finished_at = datetime.now(UTC)
        status.duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return result

    async def run_once(self) -> PassResult:
        """Publish what is missing since the watermark, then move it; raises on failure."""
        raw = await self._redis.get(self._watermark_key)
        ceiling = self._ceiling()
        watermark = min(int(raw), ceiling) if raw is not None else None
        if watermark is None and not self._backfill:
            return await self._start_without_backfill()
        low = watermark - self._lookback_ms if watermark is not None else None
        records = await self._registry.versions_since(low)
        known = await self._published.since(low)
        missing = sorted(
            (r for r in records if r.member not in known),
            key=lambda r: (r.creation_timestamp, r.name, _version_key(r.version)),
        )
        result = PassResult(scanned=len(records))
        for batch in chunks(missing, BATCH):
            envelopes: list[Envelope] = []
            for found in batch:
                envelope = await self._envelope(found, result)
                if envelope is not None:
                    envelopes.append(envelope)
            await _publish_all(self._publisher, envelopes)
            await self._published.add(batch)
            result.published += len(envelopes)
        newest = max((r.creation_timestamp for r in records), default=None)
        result.watermark = self._capped(max(w for w in (watermark, newest, 0) if w is not None))
        await self._redis.set(self._watermark_key, result.watermark)
        await self._published.trim_below(result.watermark - self._lookback_ms)
        return result

    async def _envelope(self, found: ModelVersionRecord, result: PassResult) -> Envelope | None:
        """The event of ``found``, or ``None`` (counted in ``result``) when it is gone,
        unreadable or unpublishable; transport failures raise and fail the pass."""
        # search results lack aliases and the run's experiment: read the version itself
        try:
            record = await self._registry.get_version(found.name, found.version)
        except VersionUnreadable as exc:
            self._skip(found, result, "model_version_unreadable", str(exc))
            return None
        if record is None:
            result.skipped += 1
            return None  # deleted since the search
        if record.creation_timestamp != found.creation_timestamp:
            result.skipped += 1  # deleted and registered again since: the next pass has it
            return None
        try:
            return registered_event(record, correlation_id=None)
        except ValueError as exc:
            self._skip(record, result, "model_version_unpublishable", " ".join(str(exc).split()))
            return None

    @staticmethod
    def _skip(record: ModelVersionRecord, result: PassResult, event: str, reason: str) -> None:
        _log.warning(event, model_version=record.id, error=reason)
        result.skipped += 1
        result.skipped_versions.append({"model_version": record.id, "reason": reason[:500]})

    def _ceiling(self) -> int:
        """The furthest the watermark may go: the local clock plus the look-back."""
        return int(self._clock() * 1000) + self._lookback_ms

    def _capped(self, watermark: int) -> int:
        ceiling = self._ceiling()
        if watermark <= ceiling:
            return watermark
        if self._skew_logged != watermark:  # once per offending timestamp, not every pass
            self._skew_logged = watermark
            _log.warning(
                "model_version_clock_skew",
                newest_ms=watermark,
                local_ms=ceiling - self._lookback_ms,
                ahead_s=round((watermark - ceiling + self._lookback_ms) / 1000, 1),
                note="a version is stamped in the future (MLflow's clock?): the watermark is "
                "held at local now + MODEL_VERSIONS_LOOKBACK_S",
            )
        return ceiling

    async def _start_without_backfill(self) -> PassResult:
        """``MODEL_VERSIONS_BACKFILL=false`` on a first start: what exists counts as published."""
        newest = await self._registry.newest_timestamp()
        if newest is not None:
            existing = await self._registry.versions_since(newest - self._lookback_ms)
            await self._published.add(existing)
        watermark = self._capped(newest) if newest is not None else 0
        await self._redis.set(self._watermark_key, watermark)
        _log.info("model_version_poll_started_without_backfill", watermark=watermark)
        return PassResult(watermark=watermark)


async def _publish_all(publisher: StatusSink, envelopes: list[Envelope]) -> None:
    many = getattr(publisher, "publish_many", None)
    if many is not None:
        await many(envelopes)
        return
    for envelope in envelopes:
        await publisher.publish(envelope)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)
