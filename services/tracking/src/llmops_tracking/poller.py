"""The reconciliation poller: every model version in MLflow ends up on ``llmops.models``.

Webhooks are fast but best effort (MLflow gives up after a few retries, caches its webhook list
for up to a minute, and sends nothing while the receiver is down). Every ``POLLING_INTERVAL``
seconds this task reads the versions created since its watermark and publishes a
``ModelVersionRegistered`` for each one not yet published, under the same deterministic event
id as the webhook, so a version delivered both ways is one effect for github-sync.

State in Redis, under the stream namespace:

* ``tracking:model-versions:watermark``: the ``creation_timestamp`` (ms) up to which every
  version has been published (advanced only after a whole pass succeeded);
* ``tracking:model-versions:published``: a sorted set of ``<name>/<version>`` scored by
  creation time: the versions already published at or after ``watermark - lookback``. It holds
  the ties at the watermark's exact millisecond, and with ``MODEL_VERSIONS_LOOKBACK_S`` (300 s)
  also a version whose row MLflow committed after a newer one was already read. The receiver
  adds what it publishes.

A pass reads ``versions created >= watermark - lookback`` newest first (one or two MLflow
requests), publishes the missing ones oldest first in batches, then moves the watermark.
MLflow or Redis down: the pass fails, is logged and reported at ``GET /mlflow/poller``, and the
next pass resumes where the last one stopped; the task itself never ends before the worker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
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
    chunks,
    registered_event,
    state_key,
)

BATCH: Final = 100

_log = get_logger(__name__)


@dataclass
class PassResult:
    """What one pass did."""

    scanned: int = 0
    published: int = 0
    skipped: int = 0
    watermark: int | None = None


@dataclass
class PollerStatus:
    """The last pass, for ``GET /mlflow/poller``."""

    interval_s: float
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    scanned: int = 0
    published: int = 0
    error: str | None = None
    watermark: int | None = None
    passes: int = 0
    failures: int = 0
    published_total: int = 0

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
                "error": self.error,
            },
            "watermark_ms": self.watermark,
            "watermark": iso(
                datetime.fromtimestamp(self.watermark / 1000, tz=UTC) if self.watermark else None
            ),
            "passes": self.passes,
            "failures": self.failures,
            "published_total": self.published_total,
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
    ) -> None:
        self._registry = registry
        self._redis = redis
        self._publisher = publisher
        self._watermark_key = state_key(namespace, "watermark")
        self._published = PublishedVersions(redis, namespace)
        self._backfill = backfill
        self._lookback_ms = lookback_s * 1000
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
            status.scanned = status.published = 0
            _log.warning("model_version_poll_failed", error=status.error)
        else:
            status.error = None
            status.scanned, status.published = result.scanned, result.published
            status.watermark = result.watermark
            status.published_total += result.published
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
        watermark = int(raw) if raw is not None else None
        if watermark is None and not self._backfill:
            return await self._start_without_backfill()
        low = watermark - self._lookback_ms if watermark is not None else None
        records = await self._registry.versions_since(low)
        known = await self._published.since(low)
        missing = sorted(
            (r for r in records if r.id not in known),
            key=lambda r: (r.creation_timestamp, r.name, _version_key(r.version)),
        )
        result = PassResult(scanned=len(records))
        for batch in chunks(missing, BATCH):
            envelopes: list[Envelope] = []
            for found in batch:
                envelope = await self._envelope(found)
                if envelope is None:
                    result.skipped += 1
                else:
                    envelopes.append(envelope)
            await _publish_all(self._publisher, envelopes)
            await self._published.add(batch)
            result.published += len(envelopes)
        newest = max((r.creation_timestamp for r in records), default=None)
        result.watermark = max(w for w in (watermark, newest, 0) if w is not None)
        await self._redis.set(self._watermark_key, result.watermark)
        await self._published.trim_below(result.watermark - self._lookback_ms)
        return result

    async def _envelope(self, found: ModelVersionRecord) -> Envelope | None:
        # search results lack aliases and the run's experiment: read the version itself
        record = await self._registry.get_version(found.name, found.version)
        if record is None:
            return None  # deleted since the search
        try:
            return registered_event(record, correlation_id=None)
        except ValueError as exc:
            _log.warning("model_version_unpublishable", model_version=record.id, error=str(exc))
            return None

    async def _start_without_backfill(self) -> PassResult:
        """``MODEL_VERSIONS_BACKFILL=false`` on a first start: what exists counts as published."""
        newest = await self._registry.newest_timestamp()
        if newest is not None:
            existing = await self._registry.versions_since(newest - self._lookback_ms)
            await self._published.add(existing)
        watermark = newest if newest is not None else 0
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
