"""Model-version events: what the webhook receiver and the poller share (no mlflow import).

Both paths read a version from the registry (:class:`ModelRegistry`, an adapter over MLflow),
build the same payload and publish it under the same deterministic event id
(:func:`~llmops_shared.events.model_version_event_id` of name, version and the version's
``creation_timestamp``), so github-sync drops the second copy. They also share one Redis set of
the versions already published (:class:`PublishedVersions`), so the poller does not re-send
what a webhook delivery already put on the stream. Changes (alias, tag) come only from webhook
deliveries; their id also names the delivery, so every occurrence is its own event while
MLflow's retries of one delivery keep one id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, Protocol

import redis.asyncio as aioredis

from llmops_shared.events import (
    Envelope,
    ModelVersionChanged,
    ModelVersionRegistered,
    model_version_event_id,
    model_version_id,
    new_event,
)

SOURCE: Final = "tracking"
"""The envelope ``source`` of every model-version event."""

Change = Literal["alias_created", "tag_set"]


class RegistryUnavailable(RuntimeError):
    """The model registry (MLflow) could not answer: retry later."""


class VersionUnreadable(RegistryUnavailable):
    """The registry answered but refused to read this one version (e.g. PERMISSION_DENIED):
    not a reason to hold up every other version."""


@dataclass(frozen=True)
class ModelVersionRecord:
    """A registered model version as the registry reports it (plain data, no mlflow types)."""

    name: str
    version: str
    source: str
    creation_timestamp: int
    """Milliseconds since the epoch, MLflow's clock."""
    run_id: str | None = None
    experiment_id: str | None = None
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``<name>/<version>``."""
        return model_version_id(self.name, self.version)

    @property
    def member(self) -> str:
        """``<name>/<version>@<creation_timestamp>``: this version, not an earlier one of the
        same number (a model deleted and registered again restarts at version 1)."""
        return f"{self.id}@{self.creation_timestamp}"

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.creation_timestamp / 1000, tz=UTC)


class ModelRegistry(Protocol):
    """What the receiver and the poller need from MLflow's model registry.

    Every method raises :class:`RegistryUnavailable` when the registry cannot answer.
    """

    async def get_version(self, name: str, version: str) -> ModelVersionRecord | None:
        """The version with its aliases, tags and run's experiment; ``None`` if it is gone."""
        ...

    async def versions_since(self, min_timestamp: int | None) -> list[ModelVersionRecord]:
        """Every version created at or after ``min_timestamp`` (ms; ``None``: all), newest
        first. Aliases and experiment ids may be missing: use :meth:`get_version`."""
        ...

    async def newest_timestamp(self) -> int | None:
        """The creation time of the newest version, ``None`` when there is none."""
        ...


def registered_payload(record: ModelVersionRecord) -> ModelVersionRegistered:
    """The ``ModelVersionRegistered`` payload of ``record`` (raises ValueError if invalid)."""
    return ModelVersionRegistered(**_fields(record))


def changed_payload(
    record: ModelVersionRecord, change: Change, key: str, value: str | None
) -> ModelVersionChanged:
    """The ``ModelVersionChanged`` payload: the version's current state plus what changed."""
    return ModelVersionChanged(**_fields(record), change=change, key=key, value=value)


def _fields(record: ModelVersionRecord) -> dict[str, object]:
    return {
        "model_name": record.name,
        "version": record.version,
        "run_id": record.run_id or None,
        "experiment_id": record.experiment_id or None,
        "source": record.source,
        "created_at": record.created_at,
        "aliases": list(record.aliases),
        "tags": dict(record.tags),
    }


def registered_event(record: ModelVersionRecord, *, correlation_id: str | None) -> Envelope:
    """The envelope both paths publish for a new version: one deterministic id per version."""
    return new_event(
        registered_payload(record),
        source=SOURCE,
        correlation_id=correlation_id,
        event_id=model_version_event_id(record.name, record.version, record.creation_timestamp),
    )


def changed_event_id(record: ModelVersionRecord, change: Change, key: str, delivery_id: str) -> str:
    """Deterministic id of "``change`` of ``key`` on this version, told by delivery
    ``delivery_id``": MLflow's retries of a delivery keep its id, while an alias moved away and
    back (or a tag set A -> B -> A) arrives in new deliveries and is a new event."""
    return model_version_event_id(
        record.name, record.version, record.creation_timestamp, f"{change}:{key}:{delivery_id}"
    )


def changed_event(
    record: ModelVersionRecord,
    change: Change,
    key: str,
    value: str | None,
    *,
    delivery_id: str,
) -> Envelope:
    """The ``ModelVersionChanged`` envelope of one webhook delivery (correlated to it)."""
    return new_event(
        changed_payload(record, change, key, value),
        source=SOURCE,
        correlation_id=delivery_id,
        event_id=changed_event_id(record, change, key, delivery_id),
    )


# ---------------------------------------------------------------------- Redis state


def state_key(namespace: str, name: str) -> str:
    """A Redis key of this service's model-version state, under the stream namespace."""
    return f"{namespace}tracking:model-versions:{name}"


def delivery_key(namespace: str, delivery_id: str) -> str:
    """The dedupe key of one MLflow webhook delivery, written once its event is published."""
    return f"{namespace}tracking:mlflow-webhook:delivery:{delivery_id}"


class PublishedVersions:
    """The versions already on ``llmops.models`` (:attr:`ModelVersionRecord.member`), scored
    by creation time (a sorted set).

    The poller trims it below its look-back window; the receiver adds what it publishes.
    """

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self.key = state_key(namespace, "published")

    async def add(self, records: Iterable[ModelVersionRecord]) -> None:
        mapping = {r.member: r.creation_timestamp for r in records}
        if mapping:
            await self._redis.zadd(self.key, mapping)

    async def since(self, min_timestamp: int | None) -> set[str]:
        low = "-inf" if min_timestamp is None else min_timestamp
        members = await self._redis.zrangebyscore(self.key, low, "+inf")
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def trim_below(self, min_timestamp: int) -> None:
        await self._redis.zremrangebyscore(self.key, "-inf", f"({min_timestamp}")


def chunks(items: list[ModelVersionRecord], size: int) -> Iterator[list[ModelVersionRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
