"""The Redis Streams runtime: publisher, outbox relay, consumer runner, dead letters, metrics."""

from llmops_shared.streams.commit import idempotency_key
from llmops_shared.streams.connection import (
    async_redis,
    redact_url,
    resolve_redis_url,
    sync_redis,
)
from llmops_shared.streams.consumer import ConsumerRunner, Handler
from llmops_shared.streams.dead_letters import DeadLetter, move_to_dead_letters
from llmops_shared.streams.errors import DependencyUnavailableError, NonRetryableError, is_retryable
from llmops_shared.streams.metrics import StreamMetrics
from llmops_shared.streams.outbox import OutboxRelay, add_to_outbox, outbox_table
from llmops_shared.streams.publisher import EVENT_FIELD, Publisher, StatusSink

__all__ = [
    "EVENT_FIELD",
    "ConsumerRunner",
    "DeadLetter",
    "DependencyUnavailableError",
    "Handler",
    "NonRetryableError",
    "OutboxRelay",
    "Publisher",
    "StatusSink",
    "StreamMetrics",
    "add_to_outbox",
    "async_redis",
    "idempotency_key",
    "is_retryable",
    "move_to_dead_letters",
    "outbox_table",
    "redact_url",
    "resolve_redis_url",
    "sync_redis",
]
