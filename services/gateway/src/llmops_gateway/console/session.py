"""Signing in to the console with the API's own credentials, kept in a cookie, never in a URL.

A person pastes an API key (or an OIDC access token) once; the gateway verifies it exactly as
the API does (:func:`llmops_gateway.api.auth.identify`) and keeps it in a cookie that scripts
cannot read (``HttpOnly``), that no other site's page can make the browser send
(``SameSite=Strict``), that only the console's paths receive (``Path=/console``; the API never
reads cookies, so it stays free of cross-site request forgery) and that is ``Secure`` over
HTTPS. Every console request verifies the credential again, so a revoked or expired key signs
the person out at once, and the roles are the API's: viewers see, operators act, admins replay.

``EventSource`` (the live timeline) cannot send an ``Authorization`` header; the cookie is why
the console needs no token in its URLs. Forms that change something are also checked to come
from the console's own origin (``Origin``/``Sec-Fetch-Site``), in case a browser ignores
``SameSite``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request

from llmops_gateway.api.auth import identify
from llmops_gateway.api.deps import State
from llmops_gateway.security.access import Access, Caller

CONSOLE_PREFIX: Final = "/console"
COOKIE: Final = "llmops_console"
SESSION_HOURS: Final = 8
MAX_FORM_BYTES: Final = 16_384
"""A sign-in or action form is a few fields; anything longer is refused unread."""
MAX_COOKIE_CREDENTIAL: Final = 3_800
"""Browsers drop a cookie over about 4 KB without a word: a longer token could not sign in."""


class SignInRequired(Exception):
    """No credential, or one the gateway refuses: the person signs in (again)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in to continue")
        self.reason = reason


class CrossSiteRequest(Exception):
    """A form posted from another origin: refused without acting."""


def credential_of(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value or None


def console_caller(access: Access) -> Callable[..., Caller]:
    """The dependency of a console route with rule ``access``: the cookie's credential,
    verified and checked like the API's bearer (raises :class:`SignInRequired` without one)."""

    def caller(request: Request, state: State) -> Caller:
        credential = credential_of(request)
        if credential is None:
            raise SignInRequired()
        return identify(request, state, credential, access)

    return caller


def same_origin(request: Request) -> None:
    """Refuse a state-changing form that another site's page posted."""
    origin = request.headers.get("origin")
    if origin == "null":  # a sandboxed or privacy-hidden origin: not provably the console
        raise CrossSiteRequest("form posted from an opaque origin")
    if origin is not None:
        if urlsplit(origin).netloc != request.headers.get("host"):
            raise CrossSiteRequest(f"form posted from {origin}")
        return
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CrossSiteRequest("form posted from another site")


SameOrigin = Annotated[None, Depends(same_origin)]


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each field);
    read up to :data:`MAX_FORM_BYTES` only (the sign-in form is open to anyone)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise SignInRequired("the form is too large")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise SignInRequired("the form is too large")
    fields = parse_qs(bytes(body).decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(f"{CONSOLE_PREFIX}/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return f"{CONSOLE_PREFIX}/jobs"


@dataclass(frozen=True)
class CookieOptions:
    secure: bool
    max_age_s: int = SESSION_HOURS * 3600

    @classmethod
    def for_request(cls, request: Request) -> CookieOptions:
        forwarded = request.headers.get("x-forwarded-proto", "")
        return cls(secure=request.url.scheme == "https" or forwarded == "https")
