"""FastAPI dependencies (as ``Annotated`` aliases): state, sessions, correlation id, auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from llmops_gateway.db.session import SessionFactory
from llmops_gateway.state import GatewayState


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(get_state)]


def get_sessions(state: State) -> SessionFactory:
    return state.sessions


Sessions = Annotated[SessionFactory, Depends(get_sessions)]


def get_correlation_id(request: Request) -> str:
    """Set by :class:`llmops_gateway.api.middleware.RequestContextMiddleware`."""
    value: str = request.state.correlation_id
    return value


CorrelationId = Annotated[str, Depends(get_correlation_id)]

_bearer = HTTPBearer(auto_error=False, description="An API key from the gateway's API_KEYS.")


def require_api_key(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless ``Authorization: Bearer <key>`` carries a configured key.

    Every configured key is compared, in constant time, so the answer's timing tells nothing
    about which key (or which prefix) was close.
    """
    settings = state.settings
    if settings.auth_disabled:
        return
    provided = credentials.credentials.encode() if credentials is not None else b""
    matches = [
        hmac.compare_digest(provided, key.get_secret_value().encode()) for key in settings.api_keys
    ]
    if credentials is None or not any(matches):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key" if credentials else "missing API key",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authenticated = Depends(require_api_key)
"""Put in a mutating route's ``dependencies``."""
