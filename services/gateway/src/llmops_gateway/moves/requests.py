"""Queueing move requests once: what moving runs and moving endpoints share.

Each planned move carries the envelope id of its request, derived from what it moves and the
record's ``seq`` (:func:`llmops_gateway.moves.experiments.move_event_id`,
:func:`llmops_gateway.moves.serving.move_event_id`). Asking again before the
worker answered gives the same id, which is already in the outbox: :func:`queue_once` does not
add it again (and the worker's idempotency store would not handle it twice either). Once a report
changed the record, its ``seq`` and so the next request's id are new.

Two runs planning the same moves at the same moment both find the ids missing, and the second
insert breaks the outbox's unique event id (``IntegrityError``): :func:`queue_with_retry` runs
the whole queueing transaction once more, where the other run's requests now read as already
requested. A second conflict raises :class:`QueueConflict`, with nothing committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops_gateway.db.models import OUTBOX
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.outbox import SOURCE
from llmops_shared.events import EventPayload, new_event
from llmops_shared.streams.outbox import add_to_outbox


class Requested(Protocol):
    """A planned move: the envelope id its request gets."""

    @property
    def event_id(self) -> str: ...


M = TypeVar("M", bound=Requested)
T = TypeVar("T")


class QueueConflict(Exception):
    """Another run queued the same requests at the same moment, on the first try and on the
    retry: this transaction was rolled back, nothing of it was committed."""


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


def queue_with_retry(sessions: SessionFactory, step: Callable[[Session], T]) -> T:
    """``step`` (which plans and calls :func:`queue_once`) in a transaction of its own, run once
    more when another run inserted one of the same request ids meanwhile (the outbox's unique
    event id); on the retry those read as already requested. A second conflict raises
    :class:`QueueConflict` (nothing committed)."""
    for attempt in range(2):
        try:
            with sessions.begin() as session:
                return step(session)
        except IntegrityError as exc:
            if attempt:
                raise QueueConflict(
                    "another run queued the same requests at the same moment (twice)"
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
