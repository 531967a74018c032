"""Authentication and the role check as FastAPI dependencies (see :mod:`llmops_gateway.security`).

Every route under the API prefix declares its :class:`~llmops_gateway.security.access.Access`
with :func:`guarded`: the dependency verifies the bearer credential (401 without a valid one,
503 when the OIDC issuer cannot be reached), checks the role on entry (403, naming the role and
the environment) and leaves the :class:`~llmops_gateway.security.access.Caller` on the request
for the route (:data:`CurrentCaller`) and the audit log. The OpenAPI document states each
operation's rule as ``x-llmops-access``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from llmops_gateway.api.deps import State
from llmops_gateway.api.schemas.common import UNAVAILABLE, ErrorMessage, Responses
from llmops_gateway.security.access import Access, Caller, Refusal
from llmops_gateway.security.authn import Unauthenticated
from llmops_gateway.security.oidc import IssuerUnavailable
from llmops_gateway.state import GatewayState
from llmops_shared.logging import get_logger

_log = get_logger(__name__)

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (made with POST /keys, or one of the gateway's API_KEYS) or an "
    "OIDC access token from the configured issuer.",
)

AUTH_RESPONSES: Responses = {
    401: {"model": ErrorMessage, "description": "Missing or invalid credential"},
    403: {
        "model": ErrorMessage,
        "description": "The credential lacks the role in the environment (both named)",
    },
    503: UNAVAILABLE,  # the OIDC issuer (here), the database or Redis (the route)
}


def identify(request: Request, state: GatewayState, bearer: str | None, access: Access) -> Caller:
    """The caller presenting ``bearer`` (an API key or an OIDC token), checked against
    ``access`` on entry and left on the request for the route and the audit trail. Raises
    :class:`Unauthenticated` (recorded as the request's refusal), :class:`IssuerUnavailable` or
    :class:`AccessDenied`. The API's guard and the console's sign-in cookie both come here."""
    try:
        principal = state.authenticator.authenticate(bearer)
    except Unauthenticated as exc:
        request.state.refusal = Refusal(exc.claimed, str(exc))
        raise
    except IssuerUnavailable as exc:  # a good token must not look forged meanwhile
        _log.warning("oidc_issuer_unavailable", reason=exc.reason)  # the URL stays here
        raise
    caller = Caller(principal, access, state.settings.environment)
    request.state.caller = caller
    caller.enter(request.path_params.get("environment"))
    return caller


ISSUER_UNAVAILABLE = "cannot verify the OIDC token now: the identity provider does not answer"


def _caller_of(access: Access) -> Callable[..., Caller]:
    def authorize(
        request: Request,
        state: State,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        bearer = credentials.credentials if credentials is not None else None
        try:
            return identify(request, state, bearer, access)
        except Unauthenticated as exc:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=str(exc),
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc
        except IssuerUnavailable as exc:
            raise HTTPException(
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                detail=ISSUER_UNAVAILABLE,
                headers={"Retry-After": "5"},
            ) from exc

    return authorize


def guarded(access: Access, responses: Responses | None = None) -> dict[str, Any]:
    """The route decorator's arguments for ``access``: the check, the documented 401/403/503
    (and ``responses``, the route's own) and the rule in the OpenAPI document."""
    return {
        "dependencies": [Depends(_caller_of(access))],
        "responses": {**AUTH_RESPONSES, **(responses or {})},
        "openapi_extra": {"x-llmops-access": access.describe()},
    }


def current_caller(request: Request) -> Caller:
    """The caller the route's guard verified (the guard runs before the route's parameters)."""
    caller: Caller = request.state.caller
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
