"""The Redis Streams runtime: publisher, outbox relay, consumer runner, dead letters, metrics.

The outbox is not re-exported: it needs SQLAlchemy, which only the ``llmops-shared[sql]`` extra
installs (the gateway's), so its users import :mod:`llmops_shared.streams.outbox` themselves and
a worker importing this package never imports SQLAlchemy.
"""

from llmops_shared.streams.commit import idempotency_key
from llmops_shared.streams.connection import (
    async_redis,
    redact_url,
    resolve_redis_url,
    sync_redis,
)
from llmops_shared.streams.consumer import ConsumerRunner
from llmops_shared.streams.dead_letters import DeadLetter, move_to_dead_letters
from llmops_shared.streams.errors import DependencyUnavailableError, NonRetryableError, is_retryable
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.processing import Handler
from llmops_shared.streams.publisher import EVENT_FIELD, Publisher, StatusSink

__all__ = [
    "EVENT_FIELD",
    "ConsumerRunner",
    "DeadLetter",
    "DependencyUnavailableError",
    "Handler",
    "NonRetryableError",
    "Publisher",
    "StatusSink",
    "StreamMetrics",
    "async_redis",
    "idempotency_key",
    "is_retryable",
    "move_to_dead_letters",
    "redact_url",
    "resolve_redis_url",
    "sync_redis",
]
