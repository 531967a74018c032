"""Stream names, dead-letter stream names and the event type naming rule.

Kept free of pydantic and of the payload models so that anything that only routes entries (the
streams runtime, ops scripts) can import the names without loading the contract.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class Stream(StrEnum):
    """The Redis streams of the platform; each event type belongs to exactly one of them."""

    TRAINING = "llmops.training"
    SERVING = "llmops.serving"
    CATALOG = "llmops.catalog"
    DATASETS = "llmops.datasets"
    MODELS = "llmops.models"
    STATUS = "llmops.status"
    CONFIG = "llmops.config"


DEAD_LETTER_SUFFIX: Final = ".dlq"

EVENT_TYPE_PATTERN: Final = (
    r"^llmops\.(?P<domain>[a-z][a-z0-9]*)\.(?P<entity>[a-z][a-z0-9_]*)"
    r"\.(?P<verb>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)$"
)
"""``llmops.<domain>.<entity>.<past-tense-verb>.v<N>``; ``<domain>`` is the stream's last part."""

_EVENT_TYPE_RE: Final = re.compile(EVENT_TYPE_PATTERN)


def dead_letter_stream(stream: str) -> str:
    """The stream that keeps the entries consumers of ``stream`` gave up on."""
    return f"{stream}{DEAD_LETTER_SUFFIX}"


def is_valid_event_type(event_type: str) -> bool:
    """Whether ``event_type`` follows the naming rule (it says nothing about registration)."""
    return _EVENT_TYPE_RE.match(event_type) is not None


def stream_of_type_name(event_type: str) -> Stream:
    """The stream a well-formed type name points at by its ``<domain>`` part.

    Raises ValueError for a name that breaks the rule or names no stream; used to check that
    every registered payload declares the stream its name promises.
    """
    match = _EVENT_TYPE_RE.match(event_type)
    if match is None:
        raise ValueError(f"event type {event_type!r} does not match {EVENT_TYPE_PATTERN}")
    return Stream(f"llmops.{match['domain']}")
