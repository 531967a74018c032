"""Queue an event in the transactional outbox, inside the caller's transaction.

The relay publishes it after commit, so an event leaves the gateway if and only if the state
change it announces was committed.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from llmops_gateway.db.models import OUTBOX
from llmops_shared.events import EventPayload, new_event
from llmops_shared.streams.outbox import add_to_outbox

SOURCE: Final = "gateway"
"""The CloudEvents ``source`` of everything the gateway publishes."""


def publish(session: Session, payload: EventPayload, correlation_id: str) -> None:
    """Add ``payload``'s event to the outbox of the open transaction."""
    add_to_outbox(session, OUTBOX, new_event(payload, source=SOURCE, correlation_id=correlation_id))
