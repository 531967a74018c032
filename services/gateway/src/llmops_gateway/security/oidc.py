"""Verifying an OIDC bearer token (a JWT from the organisation's identity provider) into a
:class:`~llmops_gateway.security.roles.Principal`.

The token is only trusted once its signature checks against a key the issuer publishes (its
JWKS) and its ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` hold. The header's ``alg`` is read
and checked against an asymmetric allow-list *before* any key is looked up: that is what stops
``alg: none`` and the classic confusion where an ``HS256`` token is "signed" with the issuer's
public key used as an HMAC secret. Roles come from one claim (``groups``, or a dotted path such as
Keycloak's ``realm_access.roles``) mapped through a configured table to grant strings.

Two failures stay apart because the API answers them differently: :class:`TokenRejected` (the
token is bad: 401) and :class:`IssuerUnavailable` (we could not fetch the issuer's keys: 503, a
good token must not look forged while the identity provider is down).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKClientConnectionError,
    PyJWKClientError,
    PyJWKSetError,
    PyJWTError,
)

from llmops_gateway.security.oidc_roles import checked_role_map, grants_from_claims
from llmops_gateway.security.roles import Principal

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Signatures only the issuer can make: the verifier holds public keys, never a secret."""
REFETCH_INTERVAL_S: Final = 10.0
"""An unknown ``kid`` refetches the JWKS (a rotated key), but no more often than this: a stream
of tokens with made-up key ids must not turn the gateway into a load generator for the issuer."""
ISSUER_BACKOFF_S: Final = 5.0
"""After the issuer could not be asked, how long it is taken as down without asking again."""
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
OIDC_PREFIX: Final = "oidc:"
"""Before a token's subject in the principal's name: no API key can be named like a person of
the identity provider (key names have no colon), so "who" in the audit log is never ambiguous."""

_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments (the signature may be empty, as in an ``alg: none`` token, which
    should be refused *as a JWT* rather than as an unknown API key). Used to route a bearer value
    to the API-key path or to :class:`OidcVerifier`; it proves nothing about the token."""
    return _JWT.match(token) is not None


class TokenRejected(Exception):
    """The token does not prove an identity; ``reason`` says why (the 401 detail). It never
    contains the token itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IssuerUnavailable(Exception):
    """The issuer's discovery document or JWKS could not be fetched or used (the 503 detail):
    nothing is known about the token either way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OidcConfig:
    """Which issuer the gateway trusts and how its tokens' claims become a principal.

    ``role_map`` maps a value of the roles claim to grant strings of
    :func:`~llmops_gateway.security.roles.parse_grants`; it is checked here, so a typo in a grant
    fails at start-up rather than on some user's first request.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    roles_claim: str = "groups"
    role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    subject_claim: str = "sub"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: int = 30
    jwks_cache_s: int = 300
    http_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("OIDC needs both an issuer and an audience")
        if not self.algorithms:
            raise ValueError("OIDC needs at least one accepted algorithm (e.g. RS256)")
        for alg in self.algorithms:
            if alg.lower() == "none":
                raise ValueError("OIDC algorithm 'none' refused: it accepts unsigned tokens")
            if alg.upper().startswith("HS"):
                raise ValueError(
                    f"OIDC algorithm {alg} refused: HMAC needs a shared secret, and verifying "
                    "with the issuer's public key as that secret lets anyone mint tokens; "
                    "use an asymmetric algorithm (RS256, ES256, ...)"
                )
            if alg not in ASYMMETRIC_ALGORITHMS:
                known = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
                raise ValueError(f"OIDC algorithm {alg!r} unknown (one of {known})")
        if self.leeway_s < 0 or self.jwks_cache_s <= 0 or self.http_timeout_s <= 0:
            raise ValueError("OIDC leeway_s must be >= 0, jwks_cache_s and http_timeout_s > 0")
        object.__setattr__(self, "role_map", checked_role_map(self.role_map))
        object.__setattr__(self, "algorithms", tuple(self.algorithms))


class _JwksClient(PyJWKClient):
    """PyJWT's JWKS client (fetch, cache for ``lifespan``, parse), counting its fetches so the
    verifier can tell whether a lookup has just fetched the JWKS."""

    def __init__(self, uri: str, config: OidcConfig) -> None:
        super().__init__(
            uri,
            cache_jwk_set=True,
            lifespan=config.jwks_cache_s,
            timeout=config.http_timeout_s,
            # PyJWT's own cooldown counts from *any* fetch (the first one too), which would hide
            # a key rotated just after; the verifier rate-limits the forced refetches itself
            cooldown_duration=0,
        )
        self.fetches = 0

    def fetch_data(self) -> Any:
        data = super().fetch_data()
        self.fetches += 1
        return data


class OidcVerifier:
    """Verifies bearer JWTs of one issuer. Thread-safe (``verify`` runs in FastAPI's thread
    pool); constructing it fetches nothing, so the gateway starts while the issuer is down.

    ``clock`` (monotonic seconds) is for tests of the refetch rate limit.
    """

    def __init__(self, config: OidcConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks: _JwksClient | None = None
        self._refetched_at: float | None = None
        self._down: tuple[float, str] | None = None
        """Until when (clock) the issuer is taken as down, and why."""

    def verify(self, token: str) -> Principal:
        """The principal ``token`` proves. Raises :class:`TokenRejected` (with the reason) or
        :class:`IssuerUnavailable`; a valid token without any mapped role is still a principal,
        with no grants (forbidden, not unauthenticated)."""
        config = self.config
        if not looks_like_jwt(token):
            raise TokenRejected("not a JWT (expected three base64url segments)")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise TokenRejected("malformed token header") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise TokenRejected("token header names no algorithm")
        if alg not in config.algorithms:
            accepted = ", ".join(config.algorithms)
            raise TokenRejected(f"algorithm {_shown(alg)} not accepted (only {accepted})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("token header names no signing key (kid)")
        key = self._signing_key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_s,
                options={"require": ["exp", "iss"]},
            )
        except PyJWTError as error:
            raise TokenRejected(_rejection(error, alg, key)) from None
        return Principal(
            name=f"{OIDC_PREFIX}{self._subject(claims)}",
            kind="oidc",
            grants=grants_from_claims(claims, config.roles_claim, config.role_map),
        )

    def _subject(self, claims: Mapping[str, Any]) -> str:
        for claim in (self.config.subject_claim, "sub"):
            value = claims.get(claim)
            if isinstance(value, str) and value:
                return value
        raise TokenRejected("token has no sub claim (nothing names the principal)")

    def _signing_key(self, kid: str) -> PyJWK:
        """The issuer's key ``kid`` (see :meth:`_lookup`). An issuer that could not be asked is
        taken as down for :data:`ISSUER_BACKOFF_S`: the requests meanwhile are answered at once
        (503) instead of each waiting for the issuer's timeout under the lock."""
        with self._lock:
            now = self._clock()
            if self._down is not None and now < self._down[0]:
                raise IssuerUnavailable(self._down[1])
            try:
                key = self._lookup(kid, now)
            except IssuerUnavailable as error:
                self._down = (now + ISSUER_BACKOFF_S, error.reason)
                raise
            self._down = None
        if key is None:
            raise TokenRejected(f"unknown signing key {_shown(kid)}")
        return key

    def _lookup(self, kid: str, now: float) -> PyJWK | None:
        """``kid`` in the cached JWKS; an unknown ``kid`` (a rotated key) refetches the JWKS,
        unless this lookup has just fetched it, at most once per :data:`REFETCH_INTERVAL_S`."""
        jwks = self._jwks_client()
        try:
            fetches = jwks.fetches
            key = jwks.match_kid(jwks.get_signing_keys(), kid)
            may_refetch = jwks.fetches == fetches and (
                self._refetched_at is None or now - self._refetched_at >= REFETCH_INTERVAL_S
            )
            if key is None and may_refetch:
                self._refetched_at = now
                key = jwks.match_kid(jwks.get_signing_keys(refresh=True), kid)
        except PyJWKClientConnectionError as error:
            cause = error.__cause__ or error
            raise IssuerUnavailable(f"cannot fetch the JWKS {jwks.uri}: {cause}") from None
        except (PyJWKClientError, PyJWKSetError) as error:
            raise IssuerUnavailable(f"the JWKS {jwks.uri} is unusable: {error}") from None
        return key

    def _jwks_client(self) -> _JwksClient:
        """The JWKS client, built once (after discovery, when no ``jwks_url`` is configured);
        a failed discovery is retried by the next request."""
        if self._jwks is None:
            url = self.config.jwks_url or self._discover_jwks_url()
            try:
                self._jwks = _JwksClient(url, self.config)
            except PyJWKClientError as error:
                raise IssuerUnavailable(f"JWKS URL {url!r} refused: {error}") from None
        return self._jwks

    def _discover_jwks_url(self) -> str:
        """``jwks_uri`` from the issuer's discovery document, which must name the same issuer
        (OpenID Connect Discovery 1.0, 4.3): a document for another realm is a misconfiguration."""
        url = self.config.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            response = httpx.get(url, timeout=self.config.http_timeout_s)
            response.raise_for_status()
            document = response.json()
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            raise IssuerUnavailable(
                f"cannot fetch the OIDC discovery {url}: HTTP {status}"
            ) from None
        except (httpx.HTTPError, ValueError) as error:
            reason = str(error) or type(error).__name__
            raise IssuerUnavailable(f"cannot fetch the OIDC discovery {url}: {reason}") from None
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"the OIDC discovery {url} is not a JSON object")
        if document.get("issuer") != self.config.issuer:
            raise IssuerUnavailable(
                f"the OIDC discovery {url} names issuer {document.get('issuer')!r}, "
                f"not {self.config.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IssuerUnavailable(f"the OIDC discovery {url} has no jwks_uri")
        return jwks_uri


def _rejection(error: PyJWTError, alg: str, key: PyJWK) -> str:
    """The 401 detail for PyJWT's ``error`` (PyJWT's own texts are terser than a user needs)."""
    if isinstance(error, ExpiredSignatureError):
        return "token expired"
    if isinstance(error, ImmatureSignatureError):
        claim = "iat" if "iat" in str(error) else "nbf"
        return f"token not valid yet ({claim} is in the future)"
    if isinstance(error, InvalidAudienceError):
        return "wrong audience"
    if isinstance(error, InvalidIssuerError):
        return "wrong issuer"
    if isinstance(error, MissingRequiredClaimError):
        return f"token has no {error.claim} claim"
    if isinstance(error, InvalidSignatureError):
        return "signature does not match"
    if isinstance(error, InvalidAlgorithmError):  # PyJWT binds a JWK to one algorithm
        return f"signing key {_shown(key.key_id)} is a {key.algorithm_name} key, not {alg}"
    return f"invalid token: {error}"


def _shown(value: object, limit: int = 64) -> str:
    """A header value fit for an error message: printable, bounded (it is attacker input)."""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text if len(text) <= limit else text[:limit] + "..."
