"""``/keys``: the stored API keys. Admins of every environment make, list and revoke them; a
new key is shown once (only its SHA-256 is kept), and a revoked one is refused from the next
request on. See docs/security.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, status

from llmops_gateway.api.auth import CurrentCaller, guarded
from llmops_gateway.api.deps import State
from llmops_gateway.api.routes import api_router
from llmops_gateway.api.schemas.common import error_responses
from llmops_gateway.api.schemas.keys import KeyCreated, KeyList, KeyOut, KeyRequest
from llmops_gateway.domain.keys import create_key, list_keys, revoke_key
from llmops_gateway.security.access import Access, Scope
from llmops_gateway.security.roles import Role

router = api_router("/keys", tag="security")

MANAGE_KEYS = Access(Role.ADMIN, Scope.ALL)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make an API key (the answer shows it once)",
    **guarded(MANAGE_KEYS, error_responses(conflict="The name is taken", auth=False)),
)
def make_key(body: KeyRequest, state: State, caller: CurrentCaller) -> KeyCreated:
    row, key = create_key(
        state.sessions,
        name=body.name,
        grants=body.grants(),
        expires_at=body.expires_at,
        created_by=caller.principal.name,
    )
    return KeyCreated.made(row, key)


@router.get("", summary="List API keys (never the keys themselves)", **guarded(MANAGE_KEYS))
def keys(state: State) -> KeyList:
    return KeyList(items=[KeyOut.of(row) for row in list_keys(state.sessions)])


@router.delete(
    "/{key_id}",
    summary="Revoke an API key (refused from the next request on)",
    **guarded(MANAGE_KEYS, error_responses("No such key", auth=False)),
)
def revoke(
    key_id: Annotated[str, Path(max_length=32)], state: State, caller: CurrentCaller
) -> KeyOut:
    return KeyOut.of(revoke_key(state.sessions, key_id, revoked_by=caller.principal.name))
