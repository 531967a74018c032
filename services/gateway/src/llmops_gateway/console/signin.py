"""``/console/sign-in`` and ``/console/sign-out`` (see :mod:`llmops_gateway.console.session`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from llmops_gateway.api.auth import identify
from llmops_gateway.api.deps import State
from llmops_gateway.console.routing import ConsoleRoute, sign_in_page
from llmops_gateway.console.session import (
    CONSOLE_PREFIX,
    COOKIE,
    MAX_COOKIE_CREDENTIAL,
    CookieOptions,
    SameOrigin,
    form_fields,
    safe_next,
)
from llmops_gateway.console.templating import page
from llmops_gateway.security.access import VIEW_ANY

router = APIRouter(prefix=CONSOLE_PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return page(request, "sign_in.html", None, reason=None, next=safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, state: State, _origin: SameOrigin) -> Response:
    """Verify the pasted credential as the API would (any viewer may use the console) and keep
    it in the console's cookie; a refused one shows the form again with the reason."""
    fields = await form_fields(request)
    credential = fields.get("credential", "").strip()
    target = safe_next(fields.get("next"))
    request.state.sign_in_next = target  # kept when the credential is refused
    if not credential:
        return page(
            request, "sign_in.html", None, status_code=401, reason="paste a key", next=target
        )
    if len(credential) > MAX_COOKIE_CREDENTIAL:
        reason = (
            f"this token is {len(credential):,} characters; a browser keeps at most about "
            f"{MAX_COOKIE_CREDENTIAL:,} in a cookie: sign in with an API key (llmops keys create)"
        )
        return page(request, "sign_in.html", None, status_code=422, reason=reason, next=target)
    # refusals become ConsoleRoute's pages; the check may read the database or fetch the
    # OIDC issuer's keys, so it runs off the event loop
    await asyncio.to_thread(identify, request, state, credential, VIEW_ANY)
    response = RedirectResponse(target, status_code=303)
    options = CookieOptions.for_request(request)
    response.set_cookie(
        COOKIE,
        credential,
        max_age=options.max_age_s,
        path=CONSOLE_PREFIX,
        secure=options.secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, _origin: SameOrigin) -> Response:
    response = sign_in_page(request, None, status_code=200)
    response.delete_cookie(COOKIE, path=CONSOLE_PREFIX)
    return response
