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


def without_credentials(value: str | None) -> str | None:
    """Refuse a URI that carries a credential: a password (``scheme://user:secret@host``), or
    any user part of an http(s) URI (``https://<token>@host``). Requests are stored, put in
    events and shown in the API; credentials belong in the worker's settings (``AWS_*``,
    ``HF_TOKEN``...), never in a location."""
    if value is None:
        return None
    found = _USERINFO.match(value)
    if found and (":" in found["userinfo"] or found["scheme"].lower() in {"http", "https"}):
        raise PydanticCustomError(
            CREDENTIALS_IN_URI,
            "credentials in a URI are refused (user:password@ or a token@): give them to the "
            "worker in its settings, never in a request",
        )
    return value


NoCredentials: Final = AfterValidator(without_credentials)
"""The rule :func:`without_credentials` on a URI field: ``Annotated[str, NoCredentials]``."""
