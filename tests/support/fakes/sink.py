"""A :class:`~llmops_shared.streams.StatusSink` that keeps what is published, in order."""

from __future__ import annotations

from llmops_shared.events import Envelope, Event, decode_event, encode_event
from llmops_shared.streams import StatusSink


class RecordingSink:
    """Publishes nowhere: every envelope is kept (and decoded, as the gateway would)."""

    def __init__(self, *, fail: Exception | None = None) -> None:
        self.published: list[Envelope] = []
        self.fail = fail
        """Raised by every publish when set (a lost Redis); nothing is kept then."""

    async def publish(self, envelope: Envelope) -> str:
        if self.fail is not None:
            raise self.fail
        self.published.append(envelope)
        return f"{len(self.published)}-0"

    @property
    def events(self) -> list[Event]:
        """What was published, as a consumer decodes it off the stream."""
        return [decode_event(encode_event(envelope)) for envelope in self.published]


def _conforms(sink: RecordingSink) -> StatusSink:
    return sink  # mypy: the fake is a StatusSink
