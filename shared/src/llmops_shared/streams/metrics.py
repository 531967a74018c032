"""Prometheus metrics of the streams runtime, registered on a registry the service owns.

A registry is passed in (not the process-global one) so that tests and several runners in one
process never collide. Children are bound per stream and group once: the hot path only
increments.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class StreamMetrics:
    """The families; call :meth:`bind` for one (stream, group)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ("stream", "group")
        self.consumed = Counter(
            "llmops_events_consumed",
            "Entries read from a stream, redeliveries included",
            labels,
            registry=registry,
        )
        self.acked = Counter(
            "llmops_events_acked", "Entries acknowledged (handled, duplicates, trimmed)", labels,
            registry=registry,
        )  # fmt: skip
        self.duplicates = Counter(
            "llmops_events_duplicates",
            "Entries skipped because their event id was already processed",
            labels,
            registry=registry,
        )
        self.retried = Counter(
            "llmops_events_retried", "Handler retries after a transient error", labels,
            registry=registry,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "llmops_events_dead_lettered",
            "Entries moved to the dead-letter stream",
            (*labels, "cause"),
            registry=registry,
        )
        self.lag = Gauge(
            "llmops_consumer_lag", "Entries not yet delivered to the group", labels,
            registry=registry,
        )  # fmt: skip
        self.pending = Gauge(
            "llmops_consumer_pending", "Entries delivered but not acknowledged", labels,
            registry=registry,
        )  # fmt: skip
        self.handler_seconds = Histogram(
            "llmops_handler_seconds",
            "Handler latency",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.group_recreated = Counter(
            "llmops_consumer_group_recreated",
            "Consumer groups recreated after NOGROUP (Redis lost data)",
            labels,
            registry=registry,
        )
        self.dependency_outages = Counter(
            "llmops_dependency_outages",
            "Handler calls that found a dependency down (the entry stays pending, uncounted)",
            labels,
            registry=registry,
        )

    def bind(self, stream: str, group: str) -> BoundStreamMetrics:
        return BoundStreamMetrics(
            consumed=self.consumed.labels(stream=stream, group=group),
            acked=self.acked.labels(stream=stream, group=group),
            duplicates=self.duplicates.labels(stream=stream, group=group),
            retried=self.retried.labels(stream=stream, group=group),
            dead_lettered_poison=self.dead_lettered.labels(
                stream=stream, group=group, cause="max_deliveries"
            ),
            dead_lettered_invalid=self.dead_lettered.labels(
                stream=stream, group=group, cause="non_retryable"
            ),
            lag=self.lag.labels(stream=stream, group=group),
            pending=self.pending.labels(stream=stream, group=group),
            handler_seconds=self.handler_seconds.labels(stream=stream, group=group),
            group_recreated=self.group_recreated.labels(stream=stream, group=group),
            dependency_outages=self.dependency_outages.labels(stream=stream, group=group),
        )


@dataclass(frozen=True)
class BoundStreamMetrics:
    """The children for one (stream, group)."""

    consumed: Counter
    acked: Counter
    duplicates: Counter
    retried: Counter
    dead_lettered_poison: Counter
    dead_lettered_invalid: Counter
    lag: Gauge
    pending: Gauge
    handler_seconds: Histogram
    group_recreated: Counter
    dependency_outages: Counter
