"""The console's Jinja2 templates (autoescaped) and the helpers they use.

Built once per app by :func:`build_templates` (no import-time state); a page is rendered with
:func:`page`, which adds what every page shows: who is signed in, with which roles, and the
navigation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from llmops_gateway.security.access import Caller
from llmops_gateway.security.roles import ENVIRONMENTS, Role

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
STATIC_DIR: Final = Path(__file__).parent / "static"
NAV: Final = (
    ("jobs", "Training jobs"),
    ("endpoints", "Endpoints"),
    ("datasets", "Datasets"),
    ("models", "Models"),
    ("dead-letters", "Dead letters"),
    ("health", "Health"),
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Every console answer: scripts and styles only from the console itself (no inline script
runs even if some text escaped), never framed, never cached (pages show what a role may see)."""


def when(value: datetime | None) -> str:
    """A timestamp as a person reads it (UTC, to the second)."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_class(value: str | None) -> str:
    return "status-" + "".join(ch for ch in (value or "unknown").lower() if ch.isalnum())


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.filters["when"] = when
    templates.env.filters["status_class"] = status_class
    templates.env.globals["nav"] = NAV
    return templates


def roles_of(caller: Caller) -> str:
    """``dev: admin, stg: viewer`` for the header."""
    held = [(env, caller.principal.role_in(env)) for env in ENVIRONMENTS]
    return ", ".join(f"{env}: {role.label}" for env, role in held if role) or "no role"


def page(
    request: Request,
    name: str,
    caller: Caller | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render template ``name`` with the signed-in ``caller`` (None on the sign-in page)."""
    templates: Jinja2Templates = request.app.state.console_templates
    response = templates.TemplateResponse(
        request,
        name,
        {
            "caller": caller,
            "roles": roles_of(caller) if caller else "",
            "is_admin": bool(caller and caller.principal.can_everywhere(Role.ADMIN)),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response
