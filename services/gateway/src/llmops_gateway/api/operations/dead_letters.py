"""``/events/dlq``: the dead letters of every stream, and replaying one after a fix.

A dead letter's id is ``<stream>:<entry id>``, e.g. ``llmops.training:1712345678901-0``: the
contract stream (not namespaced) and the entry's id in ``<stream>.dlq``; both parts are
URL-safe as they are. A letter may come from any environment, so: viewers list them, the event
itself (it carries specs) is shown to operators of every environment, and replaying needs the
admin role in every environment. Redis down or slow answers 503 (retry later), never 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, status

from llmops_gateway.api.auth import CurrentCaller, guarded
from llmops_gateway.api.deps import DeadLetters
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.common import error_responses
from llmops_gateway.api.schemas.dead_letters import DeadLetterList, DeadLetterOut, ReplayOut
from llmops_gateway.operations.dead_letters import list_dead_letters, replay_dead_letter
from llmops_gateway.security.access import VIEW_ANY, Access, Scope
from llmops_gateway.security.roles import Role
from llmops_shared.events import Stream

router = api_router("/events/dlq", tag="events")


@router.get(
    "",
    response_model=DeadLetterList,
    summary="List dead letters, newest first",
    **guarded(VIEW_ANY),
)
async def list_letters(
    store: DeadLetters,
    caller: CurrentCaller,
    stream: Annotated[
        Stream | None, Query(description="One contract stream; every stream when omitted.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 50,
) -> DeadLetterList:
    """The entries consumers gave up on, with why (reason, error type, cause, deliveries) and
    the event's id, type and subject when it parses."""
    letters = await list_dead_letters(store, stream=stream, limit=limit)
    with_event = caller.principal.can_everywhere(Role.OPERATOR)  # letters span environments
    items = [DeadLetterOut.of(s, with_event=with_event) for s in letters]
    return DeadLetterList(items=items, limit=limit)


@router.post(
    "/{letter_id}/replay",
    response_model=ReplayOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Put a dead letter back on its stream",
    **guarded(
        Access(Role.ADMIN, Scope.ALL),
        error_responses(
            "No dead letter with that id",
            "Already replayed (or it has no event to replay)",
            auth=False,
        ),
    ),
)
async def replay(
    store: DeadLetters,
    letter_id: Annotated[str, Path(max_length=100, description="<stream>:<entry id>")],
) -> ReplayOut:
    """Re-publish the original event, byte for byte (same event id: services that handled it
    skip it, the one that gave up handles it), and remove it from the dead-letter stream, in
    one atomic step. Replay after fixing the cause."""
    return ReplayOut.of(await replay_dead_letter(store, letter_id))
