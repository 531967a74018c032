"""An OpenID Connect issuer TEST DOUBLE: publishes keys and mints tokens, good and bad.

Not an identity provider: there are no users, logins or token endpoint. It is a stdlib
``ThreadingHTTPServer`` on 127.0.0.1 (see :mod:`support.http_double`) serving the two documents a
relying party reads, with the issuer path Keycloak uses (``/realms/ml``)::

    with OidcIssuer() as idp:
        token = idp.issue(claims={"groups": ["ml-admins"]})
        OidcVerifier(OidcConfig(issuer=idp.issuer, audience=idp.audience)).verify(token)

* ``GET /realms/ml/.well-known/openid-configuration``: ``issuer`` and ``jwks_uri``;
* ``GET /realms/ml/protocol/openid-connect/certs``: the JWKS (public keys of :attr:`keys`).

Both are counted (:attr:`discovery_fetches`, :attr:`jwks_fetches`) so tests can assert caching;
:attr:`down` answers them ``503``. Keys are generated per issuer with ``cryptography`` (RSA 2048
and EC P-256); :meth:`rotate` publishes a new key and withdraws the others. Besides honest tokens
:meth:`issue` signs with any key (:meth:`stranger_key`: one never published), and
:meth:`issue_unsigned` / :meth:`issue_hs256_with_public_key` forge the two classic attacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Final, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from support.http_double import DoubleHandler, HttpDouble, bound_handler

REALM_PATH: Final = "/realms/ml"
JWKS_PATH: Final = REALM_PATH + "/protocol/openid-connect/certs"
DISCOVERY_PATH: Final = REALM_PATH + "/.well-known/openid-configuration"
DEFAULT_AUDIENCE: Final = "llmops-gateway"
ABSENT: Final = object()
"""A claim or header value for :meth:`OidcIssuer.issue` that removes it (no ``exp``, no ``kid``)."""

KeyAlg = Literal["RS256", "ES256"]
RSA_POOL_SIZE: Final = 8
"""RSA key material is generated once per process and handed out in turn (2048-bit keys take
~50 ms each, a dozen tests would spend a second on them): any :data:`RSA_POOL_SIZE` keys made in
a row are distinct, far more than one test uses (a forger's key must not be the issuer's)."""
_kids = itertools.count(1)
_rsa_pool: list[rsa.RSAPrivateKey] = []
_rsa_turn = itertools.count()


def _rsa_key() -> rsa.RSAPrivateKey:
    turn = next(_rsa_turn) % RSA_POOL_SIZE
    if turn == len(_rsa_pool):
        _rsa_pool.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _rsa_pool[turn]


@dataclass(frozen=True)
class SigningKey:
    """A key pair of the issuer; ``kid`` names it in token headers and in the JWKS."""

    kid: str
    alg: KeyAlg
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, alg: KeyAlg = "RS256", kid: str | None = None) -> SigningKey:
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            _rsa_key() if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
        )
        return cls(kid or f"key-{next(_kids)}", alg, private_key)

    def public_jwk(self) -> dict[str, Any]:
        """The JWKS entry: the public key with ``kid``, ``alg`` and ``use``, as issuers publish."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class OidcIssuer(HttpDouble):
    """The double; starts with one RSA and one EC key published. ``issuer`` is known once
    started (it contains the port)."""

    def __init__(self, audience: str = DEFAULT_AUDIENCE) -> None:
        super().__init__()
        self.audience = audience
        self.keys: list[SigningKey] = [SigningKey.generate("RS256"), SigningKey.generate("ES256")]
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.down = False

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_IssuerHandler, issuer=self)

    @property
    def issuer(self) -> str:
        return self.url + REALM_PATH

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def key(self) -> SigningKey:
        """The current RSA key (the one :meth:`issue` signs with by default)."""
        return next(key for key in reversed(self.keys) if key.alg == "RS256")

    def key_for(self, alg: KeyAlg) -> SigningKey:
        return next(key for key in reversed(self.keys) if key.alg == alg)

    def rotate(self, alg: KeyAlg = "RS256") -> SigningKey:
        """A new key, now the only one in the JWKS (the old ones are withdrawn)."""
        key = SigningKey.generate(alg)
        self.keys = [key]
        return key

    @staticmethod
    def stranger_key(kid: str = "stranger") -> SigningKey:
        """A key this issuer never published (a forger's)."""
        return SigningKey.generate("RS256", kid)

    def claims(
        self, overrides: Mapping[str, Any] | None = None, lifetime_s: int = 300
    ) -> dict[str, Any]:
        """Valid claims (``iss``, ``aud``, ``sub``, ``iat``, ``exp``), then ``overrides``; a value
        of :data:`ABSENT` removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "3f1c2a9e-user",
            "iat": now,
            "exp": now + lifetime_s,
        }
        claims.update(overrides or {})
        return {name: value for name, value in claims.items() if value is not ABSENT}

    def issue(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
        alg: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """A token signed by ``key`` (default: the current RSA key) with :meth:`claims`;
        ``kid``/``alg``/``headers`` override the header (a lie about the key, say)."""
        key = key or self.key
        header = {"kid": kid or key.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not ABSENT}
        return jwt.encode(
            self.claims(claims), key.private_key, algorithm=alg or key.alg, headers=header
        )

    def issue_unsigned(self, claims: Mapping[str, Any] | None = None) -> str:
        """``alg: none`` with an empty signature: valid claims nobody signed."""
        header = {"alg": "none", "typ": "JWT", "kid": self.key.kid}
        return _compact(header, self.claims(claims), lambda _: b"")

    def issue_hs256_with_public_key(self, claims: Mapping[str, Any] | None = None) -> str:
        """The key-confusion forgery: ``HS256`` with the issuer's *public* RSA key (PEM) as the
        HMAC secret, which a verifier trusting the header's ``alg`` would accept. (PyJWT refuses
        to make one, so it is assembled by hand.)"""
        secret = self.key.public_pem()
        header = {"alg": "HS256", "typ": "JWT", "kid": self.key.kid}
        return _compact(
            header,
            self.claims(claims),
            lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest(),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(
    header: Mapping[str, Any], claims: Mapping[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


class _IssuerHandler(DoubleHandler):
    issuer: OidcIssuer

    def do_GET(self) -> None:
        idp = self.issuer
        if self.path in (DISCOVERY_PATH, JWKS_PATH) and idp.down:
            self.send_json(503, {"error": "temporarily_unavailable"})
        elif self.path == DISCOVERY_PATH:
            idp.discovery_fetches += 1
            self.send_json(200, {"issuer": idp.issuer, "jwks_uri": idp.jwks_url})
        elif self.path == JWKS_PATH:
            idp.jwks_fetches += 1
            self.send_json(200, {"keys": [key.public_jwk() for key in idp.keys]})
        else:
            self.send_json(404, {"error": "not_found"})
