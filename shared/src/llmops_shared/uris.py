"""Locations without secrets: the rule every URI a request or an event carries obeys.

Kept apart (no dependency) because the specs and the event payloads both use it.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

CREDENTIALS_IN_URI: Final = "credentials_in_uri"
"""The error type of the rule; an API answer naming it never echoes the value."""

_USERINFO: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#@\s]*)@")
_SECRET_QUERY: Final = re.compile(
    r"[?&](?:x-amz-(?:credential|signature|security-token)|x-goog-(?:credential|signature)"
    r"|sig|signature|token|access_token|password|secret|api_key|apikey)=",
    re.IGNORECASE,
)
"""Query parameters that carry a credential (presigned S3 / GCS URLs, Azure SAS, tokens)."""


def without_credentials(value: str | None) -> str | None:
    """Refuse a URI that carries a credential: a password (``scheme://user:secret@host``), any
    user part of an http(s) URI (``https://<token>@host``), or a signature or token in the query
    (a presigned URL). Requests are stored, put in events and shown in the API; credentials
    belong in the worker's settings (``AWS_*``, ``HF_TOKEN``...), never in a location."""
    if value is None:
        return None
    found = _USERINFO.match(value)
    in_userinfo = found is not None and (
        ":" in found["userinfo"] or found["scheme"].lower() in {"http", "https"}
    )
    if in_userinfo or _SECRET_QUERY.search(value):
        raise PydanticCustomError(
            CREDENTIALS_IN_URI,
            "credentials in a URI are refused (user:password@, a token@, or a signature or "
            "token in the query): give them to the worker in its settings, never in a request",
        )
    return value


NoCredentials: Final = AfterValidator(without_credentials)
"""The rule :func:`without_credentials` on a URI field: ``Annotated[str, NoCredentials]``."""
