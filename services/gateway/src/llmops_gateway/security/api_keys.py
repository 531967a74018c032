"""API keys: how they look, how they are made and how a presented one is checked.

A key is ``llmops_<id>_<secret>``: the id (12 hex characters) finds the stored row, the secret
(32 random bytes, URL-safe base64) proves possession. Only the SHA-256 of the whole key is
stored: the key is shown once, at creation, and cannot be recovered from the database. A
plain SHA-256, not a slow password hash, is the right tool here: the secret has 256 bits of
entropy (nothing to brute-force), and every request pays for the check. The comparison is in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "llmops_"
_KEY = re.compile(r"^llmops_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``key`` is shown once; ``key_id`` and ``digest`` are stored."""

    key_id: str
    key: str
    digest: str


def new_key() -> NewKey:
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, key=key, digest=digest_of(key))


def digest_of(key: str) -> str:
    """What is stored of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(presented: str) -> str | None:
    """The id of a presented value shaped like a stored key; None for anything else (a key
    from ``API_KEYS``, an OIDC token)."""
    match = _KEY.match(presented)
    return match["id"] if match else None


def matches(presented: str, digest: str) -> bool:
    return hmac.compare_digest(digest_of(presented), digest)
