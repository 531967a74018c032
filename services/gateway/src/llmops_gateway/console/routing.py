"""How a console route answers when something refuses: a page a person can read, not JSON.

The API's errors are ``{"detail": ...}`` JSON by the app's exception handlers; the console's
routes use :class:`ConsoleRoute`, which catches the same errors (raised by the credential
check, the role check or the use case) and renders them: the sign-in form for a missing or
refused credential (the cookie is dropped when it was refused), the reason for a 403, 404,
409 or 503. Nothing unexpected is caught: a bug stays a 500 that the audit trail records.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from llmops_gateway.console.session import CONSOLE_PREFIX, COOKIE, CrossSiteRequest, SignInRequired
from llmops_gateway.console.templating import page
from llmops_gateway.domain.errors import ConflictError, NotFoundError, UnavailableError
from llmops_gateway.security.access import AccessDenied, Caller
from llmops_gateway.security.authn import Unauthenticated
from llmops_gateway.security.oidc import IssuerUnavailable

_REFUSALS: Final[dict[type[Exception], tuple[int, str]]] = {
    AccessDenied: (403, "Not allowed"),
    CrossSiteRequest: (403, "Refused: the form came from another site"),
    NotFoundError: (404, "Not found"),
    ConflictError: (409, "Conflict"),
    UnavailableError: (503, "Unavailable"),
    IssuerUnavailable: (503, "The identity provider does not answer"),
}


def _target(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def sign_in_page(request: Request, reason: str | None, *, status_code: int = 401) -> Response:
    """The sign-in form, coming back to the page asked for after signing in."""
    target = _target(request)
    response = page(
        request,
        "sign_in.html",
        None,
        status_code=status_code,
        reason=reason,
        next=target
        if request.method == "GET"
        else getattr(request.state, "sign_in_next", f"{CONSOLE_PREFIX}/jobs"),
    )
    if reason is not None:  # the cookie's credential was refused: forget it
        response.delete_cookie(COOKIE, path=CONSOLE_PREFIX)
    return response


def refused_page(request: Request, exc: Exception) -> Response | None:
    """The page for an error the console knows, else None. A page asked for with no credential
    at all redirects to the sign-in form (a first visit is no refused attempt: nothing for the
    audit log); a refused credential is the form again with the reason, as a 401."""
    if isinstance(exc, SignInRequired):
        if exc.reason is None and request.method == "GET":
            return RedirectResponse(
                f"{CONSOLE_PREFIX}/sign-in?next={quote(_target(request), safe='')}",
                status_code=303,
            )
        return sign_in_page(request, exc.reason)
    if isinstance(exc, Unauthenticated):
        return sign_in_page(request, str(exc))
    for kind, (status_code, title) in _REFUSALS.items():
        if isinstance(exc, kind):
            caller: Caller | None = getattr(request.state, "caller", None)
            return page(
                request,
                "error.html",
                caller,
                status_code=status_code,
                title=title,
                message=str(exc),
            )
    return None


class ConsoleRoute(APIRoute):
    """A route whose known refusals become pages (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                response = refused_page(request, exc)
                if response is None:
                    raise
                return response

        return handle
