"""Who is calling: a bearer value in, a verified :class:`~.roles.Principal` out.

Three kinds of credential, told apart by their shape:

* a stored API key (``llmops_<id>_<secret>``, made through ``POST /keys``): its roles are
  stored with it; expired or revoked keys are refused, naming the key;
* a key of the ``API_KEYS`` setting: the operator's bootstrap keys (``llmops up`` writes one to
  ``.llmops/api-key``), admin in every environment;
* a JWT from the OIDC issuer (``OIDC_ISSUER``): verified against the issuer's keys, its groups
  claim mapped to roles (:mod:`.oidc`).

Configured keys are compared in constant time against every configured key
(:func:`llmops_shared.config.matching_key`), so the answer's timing tells nothing about which
one was close.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from llmops_gateway.db.models import utcnow
from llmops_gateway.domain.keys import StoredKey
from llmops_gateway.security.api_keys import key_id_of, matches
from llmops_gateway.security.oidc import OidcVerifier, TokenRejected, looks_like_jwt
from llmops_gateway.security.roles import EVERY_ENVIRONMENT, Principal, Role
from llmops_shared.config import matching_key

ANONYMOUS: Final = Principal("anonymous", "anonymous", {EVERY_ENVIRONMENT: Role.ADMIN})
"""Everyone, with ``AUTH_DISABLED=true`` (local use only)."""


class Unauthenticated(Exception):
    """401: no credential, or one that proves nothing; the message says which. ``claimed`` names
    the stored key that was presented when it was known but refused (revoked, expired): the
    audit log records who tried."""

    def __init__(self, message: str, *, claimed: str | None = None) -> None:
        super().__init__(message)
        self.claimed = claimed


@dataclass(frozen=True)
class Authenticator:
    configured_keys: Sequence[SecretStr]
    stored_key: Callable[[str], StoredKey | None]
    oidc: OidcVerifier | None = None
    disabled: bool = False

    def authenticate(self, bearer: str | None) -> Principal:
        if self.disabled:
            return ANONYMOUS
        if not bearer:
            raise Unauthenticated(
                "missing credential: send 'Authorization: Bearer <API key or OIDC token>'"
            )
        key_id = key_id_of(bearer)
        if key_id is not None:
            return self._stored(key_id, bearer)
        configured = self._configured(bearer)
        if configured is not None:
            return configured
        if self.oidc is not None and looks_like_jwt(bearer):
            try:
                return self.oidc.verify(bearer)
            except TokenRejected as exc:
                raise Unauthenticated(f"OIDC token refused: {exc.reason}") from exc
        raise Unauthenticated("invalid credential (not a known API key or a valid OIDC token)")

    def _configured(self, bearer: str) -> Principal | None:
        found = matching_key(bearer, self.configured_keys)
        if found is None:
            return None
        return Principal(f"API_KEYS#{found}", "configured_key", {EVERY_ENVIRONMENT: Role.ADMIN})

    def _stored(self, key_id: str, bearer: str) -> Principal:
        key = self.stored_key(key_id)
        if key is None or not matches(bearer, key.digest):
            raise Unauthenticated("invalid API key")
        if key.revoked_at is not None:
            raise Unauthenticated(f"API key {key.name!r} was revoked", claimed=key.name)
        if key.expires_at is not None and key.expires_at <= utcnow():
            expired = f"API key {key.name!r} expired at {key.expires_at.isoformat()}"
            raise Unauthenticated(expired, claimed=key.name)
        return Principal(key.name, "api_key", key.grants)
