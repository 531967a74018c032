"""Verifying OIDC bearer tokens (``llmops_gateway.security.oidc``) against a local issuer that
serves its discovery document and JWKS over HTTP on 127.0.0.1 (``support.oidc_issuer``).

Every refusal is checked for its reason (the 401 detail a user reads) and for never echoing the
token; the issuer's fetch counters show what was (not) fetched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import pytest

from llmops_gateway.security.oidc import (
    ISSUER_BACKOFF_S,
    REFETCH_INTERVAL_S,
    IssuerUnavailable,
    OidcConfig,
    OidcVerifier,
    TokenRejected,
    looks_like_jwt,
)
from llmops_gateway.security.roles import EVERY_ENVIRONMENT, Principal, Role

from support.oidc_issuer import ABSENT, OidcIssuer

pytestmark = pytest.mark.integration

ROLE_MAP: Final = {"ml-admins": ("admin",), "ml-dev": ("dev:operator", "prod:viewer")}


class Clock:
    """The verifier's monotonic clock, moved by hand (the refetch rate limit)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(idp: OidcIssuer, clock: Clock) -> OidcVerifier:
    """Discovery on (no ``jwks_url``), Keycloak's layout."""
    return verifier_for(idp, clock)


def verifier_for(idp: OidcIssuer, clock: Clock | None = None, **config: Any) -> OidcVerifier:
    settings: dict[str, Any] = {"issuer": idp.issuer, "audience": idp.audience}
    settings["role_map"] = ROLE_MAP
    return OidcVerifier(OidcConfig(**{**settings, **config}), clock=clock or Clock())


def rejected(verifier: OidcVerifier, token: str) -> str:
    """The reason ``token`` is refused (asserting it does not quote the token)."""
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    reason = info.value.reason
    assert str(info.value) == reason
    for segment in token.split("."):
        assert len(segment) < 8 or segment not in reason
    return reason


# valid tokens


def test_a_valid_token_is_the_subject_with_its_mapped_grants(idp: OidcIssuer, clock: Clock) -> None:
    verifier = verifier_for(idp, clock, subject_claim="email")
    token = idp.issue({"email": "ada@example.com", "groups": ["ml-dev", "ml-admins", "other"]})

    principal = verifier.verify(token)

    assert principal == Principal(
        name="oidc:ada@example.com",
        kind="oidc",
        grants={EVERY_ENVIRONMENT: Role.ADMIN, "dev": Role.OPERATOR, "prod": Role.VIEWER},
    )
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_the_subject_falls_back_to_sub_and_an_ec_key_verifies(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, subject_claim="preferred_username")
    token = idp.issue({"groups": "ml-dev"}, key=idp.key_for("ES256"))  # one string, not a list

    principal = verifier.verify(token)

    assert principal.name == "oidc:3f1c2a9e-user"
    assert principal.grants == {"dev": Role.OPERATOR, "prod": Role.VIEWER}


def test_a_token_without_a_mapped_role_is_an_identity_without_grants(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    assert verifier.verify(idp.issue({"groups": ["finance"]})).grants == {}
    assert verifier.verify(idp.issue()).grants == {}  # no roles claim at all


def test_a_dotted_roles_claim_is_a_path_into_the_token(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, roles_claim="realm_access.roles")
    token = idp.issue({"realm_access": {"roles": ["offline_access", "ml-admins"]}})

    assert verifier.verify(token).grants == {EVERY_ENVIRONMENT: Role.ADMIN}


def test_a_namespaced_claim_with_dots_is_read_literally(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, roles_claim="https://acme.example/roles")

    token = idp.issue({"https://acme.example/roles": ["ml-admins"]})

    assert verifier.verify(token).grants == {EVERY_ENVIRONMENT: Role.ADMIN}


def test_the_keys_are_cached_and_discovery_happens_once(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    verifier.verify(idp.issue())
    verifier.verify(idp.issue({"sub": "someone-else"}))

    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_concurrent_first_requests_discover_and_fetch_once(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    # verify() runs in FastAPI's thread pool: a cold cache must not stampede the issuer
    tokens = [idp.issue({"sub": f"user-{n}"}) for n in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(lambda token: verifier.verify(token).name, tokens))

    assert names == [f"oidc:user-{n}" for n in range(8)]
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_a_configured_jwks_url_skips_discovery(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, jwks_url=idp.jwks_url)

    verifier.verify(idp.issue())

    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 1)


# bad claims

NOW: Final = int(time.time())


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-app"}, "wrong audience"),
        ({"aud": ABSENT}, "token has no aud claim"),
        ({"iss": "https://login.example.com/realms/other"}, "wrong issuer"),
        ({"iss": ABSENT}, "token has no iss claim"),
        ({"exp": NOW - 3600}, "token expired"),
        ({"exp": ABSENT}, "token has no exp claim"),
        ({"nbf": NOW + 3600}, "token not valid yet (nbf is in the future)"),
        ({"iat": NOW + 3600}, "token not valid yet (iat is in the future)"),
        ({"sub": ABSENT}, "token has no sub claim (nothing names the principal)"),
    ],
    ids=["aud", "no-aud", "iss", "no-iss", "exp", "no-exp", "nbf", "iat", "no-sub"],
)
def test_a_token_with_bad_claims_is_refused_saying_which(
    verifier: OidcVerifier, idp: OidcIssuer, claims: dict[str, Any], reason: str
) -> None:
    assert rejected(verifier, idp.issue(claims)) == reason


def test_the_leeway_forgives_a_little_clock_skew(verifier: OidcVerifier, idp: OidcIssuer) -> None:
    now = int(time.time())
    skewed = idp.issue({"exp": now - 10, "nbf": now + 10, "iat": now + 10})

    assert verifier.verify(skewed).name == "oidc:3f1c2a9e-user"


# forged tokens


def test_alg_none_is_refused_before_any_key_is_fetched(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    reason = rejected(verifier, idp.issue_unsigned({"groups": ["ml-admins"]}))

    assert reason == "algorithm none not accepted (only RS256, ES256)"
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 0)


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    reason = rejected(verifier, idp.issue_hs256_with_public_key({"groups": ["ml-admins"]}))

    assert reason == "algorithm HS256 not accepted (only RS256, ES256)"
    assert idp.jwks_fetches == 0


def test_a_signature_by_another_key_under_a_known_kid_does_not_match(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    forged = idp.issue({"groups": ["ml-admins"]}, key=idp.stranger_key(), kid=idp.key.kid)

    assert rejected(verifier, forged) == "signature does not match"


def test_a_header_naming_the_wrong_algorithm_for_the_key_is_refused(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    ec_token_claiming_the_rsa_key = idp.issue(key=idp.key_for("ES256"), kid=idp.key.kid)

    reason = rejected(verifier, ec_token_claiming_the_rsa_key)

    assert reason == f"signing key {idp.key.kid} is a RS256 key, not ES256"


def test_an_algorithm_not_configured_is_refused_even_if_asymmetric(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, algorithms=("RS256",))

    reason = rejected(verifier, idp.issue(key=idp.key_for("ES256")))

    assert reason == "algorithm ES256 not accepted (only RS256)"


# keys


def test_an_unknown_key_id_is_refused_and_refetches_at_most_once_per_interval(
    verifier: OidcVerifier, idp: OidcIssuer, clock: Clock
) -> None:
    verifier.verify(idp.issue())
    forged = idp.issue(key=idp.stranger_key("rogue-1"))

    assert rejected(verifier, forged) == "unknown signing key rogue-1"
    assert idp.jwks_fetches == 2  # one refetch: it might have been a rotated key
    assert rejected(verifier, forged) == "unknown signing key rogue-1"
    assert idp.jwks_fetches == 2  # rate-limited
    clock.advance(REFETCH_INTERVAL_S)
    assert rejected(verifier, forged) == "unknown signing key rogue-1"
    assert idp.jwks_fetches == 3


def test_an_unknown_key_id_on_a_cold_cache_fetches_once(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    assert rejected(verifier, idp.issue(key=idp.stranger_key())) == "unknown signing key stranger"
    assert idp.jwks_fetches == 1


def test_rotated_keys_are_picked_up_and_the_withdrawn_one_is_refused(
    verifier: OidcVerifier, idp: OidcIssuer
) -> None:
    old_key = idp.key
    old_token = idp.issue({"groups": ["ml-admins"]})
    verifier.verify(old_token)

    new_key = idp.rotate()
    principal = verifier.verify(idp.issue({"groups": ["ml-admins"]}))

    assert principal.grants == {EVERY_ENVIRONMENT: Role.ADMIN}
    assert idp.jwks_fetches == 2  # one refetch, no restart
    assert new_key.kid != old_key.kid
    # the cached JWKS is the rotated one: the old key is gone (no fetch: rate-limited)
    assert rejected(verifier, old_token) == f"unknown signing key {old_key.kid}"
    assert idp.jwks_fetches == 2


def test_a_token_without_a_key_id_is_refused(verifier: OidcVerifier, idp: OidcIssuer) -> None:
    token = idp.issue(headers={"kid": ABSENT})

    assert rejected(verifier, token) == "token header names no signing key (kid)"


# not a JWT, issuer down


@pytest.mark.parametrize(
    "token",
    ["llmops_3kT9vQ2xZpL0aBcDeFgHiJkL", "", "a.b", "a.b.c.d", "héader.payload.sig"],
)
def test_a_value_that_is_not_a_jwt_is_refused_without_any_http(
    verifier: OidcVerifier, idp: OidcIssuer, token: str
) -> None:
    assert not looks_like_jwt(token)
    assert rejected(verifier, token) == "not a JWT (expected three base64url segments)"
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 0)


def test_looks_like_jwt_accepts_compact_tokens(idp: OidcIssuer) -> None:
    assert looks_like_jwt(idp.issue())
    assert looks_like_jwt(idp.issue_unsigned())  # empty signature: refused later, as a JWT


def test_a_jwt_shaped_value_with_a_garbage_header_is_refused(verifier: OidcVerifier) -> None:
    assert rejected(verifier, "bm90IGpzb24.e30.c2ln") == "malformed token header"


def test_an_issuer_that_is_down_is_unavailable_not_a_rejection(
    verifier: OidcVerifier, idp: OidcIssuer, clock: Clock
) -> None:
    token = idp.issue()
    idp.down = True

    with pytest.raises(
        IssuerUnavailable,
        match=r"cannot fetch the OIDC discovery http://127.*/openid-configuration: HTTP 503$",
    ):
        verifier.verify(token)
    asked = idp.discovery_fetches

    idp.down = False  # within the backoff the issuer is not asked again: answered at once
    with pytest.raises(IssuerUnavailable, match=r"HTTP 503$"):
        verifier.verify(token)
    assert idp.discovery_fetches == asked

    clock.advance(ISSUER_BACKOFF_S)  # then discovery is retried by the next request
    assert verifier.verify(token).name == "oidc:3f1c2a9e-user"


def test_a_jwks_that_cannot_be_fetched_is_unavailable(idp: OidcIssuer) -> None:
    verifier = verifier_for(idp, jwks_url=idp.jwks_url)
    token = idp.issue()
    idp.stop()

    with pytest.raises(IssuerUnavailable, match=r"cannot fetch the JWKS http://127\.0\.0\.1:\d+/"):
        verifier.verify(token)


def test_a_discovery_document_naming_another_issuer_is_unavailable(idp: OidcIssuer) -> None:
    # the classic misconfiguration: a trailing slash the issuer does not put in its tokens
    verifier = verifier_for(idp, issuer=idp.issuer + "/")
    token = idp.issue({"iss": idp.issuer + "/"})

    with pytest.raises(
        IssuerUnavailable, match=r"names issuer '.*/realms/ml', not '.*/realms/ml/'"
    ):
        verifier.verify(token)


# configuration


@pytest.mark.parametrize(
    ("algorithms", "message"),
    [
        (("RS256", "HS256"), "OIDC algorithm HS256 refused: HMAC needs a shared secret"),
        (("none",), "OIDC algorithm 'none' refused: it accepts unsigned tokens"),
        (("RS257",), "OIDC algorithm 'RS257' unknown"),
        ((), "OIDC needs at least one accepted algorithm"),
    ],
)
def test_the_config_refuses_symmetric_unsigned_and_unknown_algorithms(
    algorithms: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        OidcConfig(
            issuer="https://login.example.com/realms/ml", audience="x", algorithms=algorithms
        )


def test_the_config_refuses_a_role_map_with_a_bad_grant() -> None:
    with pytest.raises(ValueError, match=r"role_map\['ml-dev'\]: 'qa:operator': unknown environ"):
        OidcConfig(
            issuer="https://login.example.com/realms/ml",
            audience="llmops-gateway",
            role_map={"ml-dev": ("qa:operator",)},
        )


def test_the_config_keeps_its_own_copy_of_the_role_map() -> None:
    role_map = {"ml-dev": ("dev:operator",)}
    config = OidcConfig(issuer="https://idp", audience="gw", role_map=role_map)

    role_map["ml-dev"] = ("admin",)

    assert config.role_map == {"ml-dev": ("dev:operator",)}
