"""The console's operations pages: dead letters (with replay for admins) and integration
health, through the same use cases as ``/events/dlq`` and ``/health/integrations``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from llmops_gateway.api.deps import DeadLetters, Probes, State
from llmops_gateway.api.schemas.dead_letters import DeadLetterOut
from llmops_gateway.console.lists import Viewer
from llmops_gateway.console.routing import ConsoleRoute
from llmops_gateway.console.session import CONSOLE_PREFIX, SameOrigin, console_caller
from llmops_gateway.console.templating import page
from llmops_gateway.operations.dead_letters import list_dead_letters, replay_dead_letter
from llmops_gateway.operations.integrations_health import integrations_health
from llmops_gateway.security.access import Access, Caller, Scope
from llmops_gateway.security.roles import Role

router = APIRouter(prefix=CONSOLE_PREFIX, route_class=ConsoleRoute, include_in_schema=False)

REPLAY: Final = Access(Role.ADMIN, Scope.ALL)
"""As ``POST /events/dlq/{id}/replay``: a letter may belong to any environment."""
Admin = Annotated[Caller, Depends(console_caller(REPLAY))]
LETTERS_SHOWN: Final = 200


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    store: DeadLetters,
    caller: Viewer,
    replayed: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    letters = await list_dead_letters(store, stream=None, limit=LETTERS_SHOWN)
    return page(
        request,
        "dead_letters.html",
        caller,
        section="dead-letters",
        letters=[DeadLetterOut.of(letter, with_event=False) for letter in letters],
        replayed=replayed,
    )


@router.post("/dead-letters/{letter_id}/replay")
async def replay(
    store: DeadLetters,
    _caller: Admin,
    _origin: SameOrigin,
    letter_id: Annotated[str, Path(max_length=100)],
) -> Response:
    """Replay, then back to the list saying which (a refused replay is the 403 page)."""
    done = await replay_dead_letter(store, letter_id)
    return RedirectResponse(
        f"{CONSOLE_PREFIX}/dead-letters?replayed={quote(done.id)}", status_code=303
    )


@router.get("/health")
async def health(request: Request, state: State, probes: Probes, caller: Viewer) -> Response:
    report = await integrations_health(
        state.settings, state.sessions, probes, now=datetime.now(UTC)
    )
    return page(request, "health.html", caller, section="health", report=report)
