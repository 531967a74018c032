"""Queueing migration requests once: what moving runs and moving endpoints share.

Each planned move carries the envelope id of its request, derived from what it moves and the
record's ``seq`` (:func:`llmops_gateway.domain.experiment_migration.migration_event_id`,
:func:`llmops_gateway.domain.serving_migration.migration_event_id`). Asking again before the
worker answered gives the same id, which is already in the outbox: :func:`queue_once` does not
add it again (and the worker's idempotency store would not handle it twice either). Once a report
changed the record, its ``seq`` and so the next request's id are new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import OUTBOX
from llmops_gateway.domain.outbox import SOURCE
from llmops_shared.events import EventPayload, new_event
from llmops_shared.streams import add_to_outbox


class Requested(Protocol):
    """A planned move: the envelope id its request gets."""

    @property
    def event_id(self) -> str: ...


M = TypeVar("M", bound=Requested)


@dataclass(frozen=True)
class Queued(Generic[M]):
    """What :func:`queue_once` did: requests added now, and those already in the outbox."""

    queued: list[M]
    already_requested: list[M]

    @property
    def waiting(self) -> list[M]:
        """Every move a worker is still to answer, whoever asked for it."""
        return [*self.queued, *self.already_requested]


def queue_once(
    session: Session,
    movable: Sequence[M],
    request: Callable[[M], EventPayload],
    *,
    correlation_id: str,
) -> Queued[M]:
    """Add ``request(move)`` for each of ``movable`` to the outbox of the open transaction; a
    request whose id is already there (asked before, not answered yet) is not added again."""
    ids = [move.event_id for move in movable]
    existing = (
        set(session.scalars(select(OUTBOX.c.event_id).where(OUTBOX.c.event_id.in_(ids))))
        if ids
        else set()
    )
    queued: list[M] = []
    already: list[M] = []
    for move in movable:
        if move.event_id in existing:
            already.append(move)
            continue
        envelope = new_event(
            request(move), source=SOURCE, correlation_id=correlation_id, event_id=move.event_id
        )
        add_to_outbox(session, OUTBOX, envelope)
        queued.append(move)
    return Queued(queued=queued, already_requested=already)
