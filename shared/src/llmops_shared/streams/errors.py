"""Which failures a consumer retries and which go straight to the dead-letter stream."""

from __future__ import annotations

import pydantic


class NonRetryableError(Exception):
    """Raise from a handler when retrying cannot help (bad input, a rule the event breaks).

    The runtime dead-letters the entry at once with this message as the reason.
    """


class DependencyUnavailableError(Exception):
    """Raise from a handler when the system it drives is down (MLflow, the cluster, the Hub).

    Retryable, but not the event's fault: the runtime keeps the entry pending without counting
    the attempt towards ``max_deliveries`` and pauses the consumer with a growing backoff, so an
    outage delays events instead of dead-lettering them.
    """


def is_retryable(exc: BaseException) -> bool:
    """Transient unless the error says the input itself is wrong.

    Unknown exceptions are treated as transient: a bug or an outage then costs a few retries and,
    after ``max_deliveries``, a dead letter with the error, never a lost event.
    """
    from llmops_shared.events import EventDecodeError  # local: events imports nothing of ours

    return not isinstance(exc, NonRetryableError | EventDecodeError | pydantic.ValidationError)


def describe(exc: BaseException) -> str:
    """``Type: message`` in one line, short enough for a stream field and a log line."""
    text = " ".join(str(exc).split())
    if len(text) > 2000:
        text = text[:2000] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
