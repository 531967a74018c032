"""``llmops keys`` and ``llmops audit``: the gateway's stored API keys and its audit log.

Both need an admin of every environment (the bootstrap key ``llmops up`` writes to
``.llmops/api-key`` is one). The CLI only speaks the REST API: ``--role`` is checked here too,
so that a typo is named before anything is sent, but the gateway stays the judge. A new key is
printed once, as the gateway shows it once: it keeps only the key's hash.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, get_args

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmops_cli.commands.train import ApiKey, GatewayUrl, answered, client_for
from llmops_shared.config import Environment

keys_app = typer.Typer(
    help="Stored API keys: create (shown once), list, revoke.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

ENVIRONMENTS: Final[tuple[str, ...]] = get_args(Environment)
EVERY_ENVIRONMENT: Final = "*"
ROLES: Final = ("viewer", "operator", "admin")
"""Lowest first: where ``--role`` names a scope twice, the higher role wins (as the gateway's)."""
_GRANT = re.compile(r"^(?:(?P<scope>[^:=]*)[:=])?(?P<role>[^:=]*)$")
_DURATION = re.compile(r"^(?P<count>\d+)\s*(?P<unit>[smhdw])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_OUTCOME_STYLE: Final = {"succeeded": "green", "failed": "yellow", "refused": "red"}

AsJson = Annotated[bool, typer.Option("--json", help="print the gateway's JSON answer")]


class Outcome(StrEnum):
    """How an audited request ended (a choice, so a typo is named before anything is sent)."""

    succeeded = "succeeded"
    failed = "failed"
    refused = "refused"


def parse_roles(texts: list[str], option: str = "--role") -> dict[str, str]:
    """``--role`` values as the API's ``roles``: ``admin`` -> ``{"*": "admin"}``,
    ``dev=operator`` (or ``dev:operator``) -> ``{"dev": "operator"}``. A bare role holds in
    every environment, as the gateway reads it."""
    roles: dict[str, str] = {}
    for text in texts:
        match = _GRANT.match(text.strip().lower())
        if match is None or not match["role"] or match["scope"] == "":
            raise typer.BadParameter(
                f"{text!r} is not ROLE or ENV=ROLE (e.g. dev=operator)", param_hint=option
            )
        scope = match["scope"] or EVERY_ENVIRONMENT
        if scope not in (*ENVIRONMENTS, EVERY_ENVIRONMENT):
            known = ", ".join(ENVIRONMENTS)
            raise typer.BadParameter(
                f"{text!r}: unknown environment {scope!r} ({known} or *)", param_hint=option
            )
        role = match["role"]
        if role not in ROLES:
            known = ", ".join(ROLES)
            raise typer.BadParameter(
                f"{text!r}: unknown role {role!r} ({known})", param_hint=option
            )
        if scope not in roles or ROLES.index(role) > ROLES.index(roles[scope]):
            roles[scope] = role
    return roles


def parse_duration(text: str, option: str) -> timedelta:
    """``90m``, ``12h``, ``30d``, ``2w``: the spans people give a key or look back over."""
    match = _DURATION.match(text.strip().lower())
    if match is None or int(match["count"]) == 0:
        raise typer.BadParameter(
            f"{text!r} is not a duration such as 90m, 12h, 30d or 2w", param_hint=option
        )
    return timedelta(**{_UNITS[match["unit"]]: int(match["count"])})


def parse_time(text: str, option: str, *, relative: bool = False) -> datetime:
    """An ISO 8601 time, UTC unless it carries an offset (the gateway wants an explicit one);
    with ``relative``, a duration also means that long ago (``--since 2h``)."""
    if relative and _DURATION.match(text.strip().lower()):
        return datetime.now(UTC) - parse_duration(text, option)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        example = "2027-01-01T00:00:00Z" + (" or a duration such as 2h" if relative else "")
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time ({example})", param_hint=option
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def format_roles(roles: dict[str, str]) -> str:
    """The ``--role`` spelling (``dev=operator prod=viewer``): what is shown can be typed."""
    return " ".join(f"{scope}={role}" for scope, role in sorted(roles.items()))


def _moment(value: str | None) -> datetime | None:
    """A timestamp of the API as an aware datetime (a naive one is UTC, as the gateway keeps
    them); None when absent or unreadable."""
    try:
        moment = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _when(value: str | None) -> str:
    """A timestamp of the API, short and in UTC for a table cell; empty for None."""
    moment = _moment(value)
    if moment is None:
        return value or ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _echo_json(document: Any) -> None:
    """Plain JSON on stdout (no colours, no wrapping), for ``jq`` and scripts."""
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


@keys_app.command("create")
def create(
    name: Annotated[
        str, typer.Argument(help="who or what uses the key, e.g. ci-bot (the audit log names it)")
    ],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            "-r",
            help="admin (every environment) or ENV=ROLE / ENV:ROLE with ENV dev, stg or prod "
            "and ROLE viewer, operator or admin; repeat for several",
        ),
    ],
    expires_in: Annotated[
        str | None, typer.Option(help="lifetime, e.g. 90m, 12h, 30d (default: never expires)")
    ] = None,
    expires_at: Annotated[
        str | None, typer.Option(help="expiry, ISO 8601 (UTC unless it has an offset)")
    ] = None,
    as_json: AsJson = False,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Make an API key with ROLEs; it is printed this once and cannot be shown again."""
    roles = parse_roles(role)
    if expires_in is not None and expires_at is not None:
        raise typer.BadParameter(
            "give one of them, not both", param_hint="--expires-in / --expires-at"
        )
    expiry = None
    if expires_in is not None:
        expiry = datetime.now(UTC) + parse_duration(expires_in, "--expires-in")
    elif expires_at is not None:
        expiry = parse_time(expires_at, "--expires-at")
    with client_for(gateway, api_key) as client, answered(gateway):
        made = client.create_key(
            name, roles, expires_at=expiry.isoformat() if expiry is not None else None
        )
    warning = (
        "Store the key now: it will not be shown again (the gateway keeps only its hash; a "
        "lost key cannot be recovered: revoke it and create another)."
    )
    usage = (
        "Use it as 'Authorization: Bearer <key>', or with this CLI as --api-key <key> or "
        "LLMOPS_API_KEY=<key>."
    )
    if as_json:
        _echo_json(made)
        err_console.print(Text(warning, "bold yellow"))
        return
    expires = _when(made.get("expiresAt")) or "never"
    console.print(
        Text.assemble(
            "created API key ",
            (made["name"], "bold"),
            f" (id {made['id']}): ",
            format_roles(made.get("roles") or {}),
            f"; expires {expires}",
        )
    )
    console.print()
    console.print(Text(made["key"], "bold"), soft_wrap=True)
    console.print()
    console.print(Text(warning, "bold yellow"))
    console.print(Text(usage))


@keys_app.command("list")
def list_keys(
    as_json: AsJson = False,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Every stored key, newest first, revoked ones too (never the keys themselves)."""
    with client_for(gateway, api_key) as client, answered(gateway):
        items = client.keys()
    # the gateway never sends a key here; dropping the field keeps that true whatever it sends
    items = [{field: value for field, value in item.items() if field != "key"} for item in items]
    if as_json:
        _echo_json({"items": items})
        return
    if not items:
        console.print("no API keys (create one with `llmops keys create NAME --role ...`)")
        return
    table = Table(title="API keys, newest first")
    for column in ("name", "id", "roles", "created", "by", "expires", "revoked"):
        table.add_column(column)
    now = datetime.now(UTC)
    for item in items:
        expires = _when(item.get("expiresAt"))
        expiry = _moment(item.get("expiresAt"))
        if expiry is not None and expiry <= now:
            expires += " (expired)"
        revoked = _when(item.get("revokedAt"))
        if revoked:
            revoked += f" by {item.get('revokedBy') or '?'}"
        table.add_row(
            Text(item["name"], "bold"), Text(item["id"]),
            Text(format_roles(item.get("roles") or {})), Text(_when(item.get("createdAt"))),
            Text(item.get("createdBy") or ""), Text(expires or "never"), Text(revoked, "red"),
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def revoke(
    name_or_id: Annotated[str, typer.Argument(help="the key's name or id (see `keys list`)")],
    as_json: AsJson = False,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Revoke a key by name or id: the gateway refuses it from the next request on.

    The name is looked up in the list (an id wins over a name); anything else is sent as an id
    for the gateway to judge, so its 404 names what it did not find."""
    with client_for(gateway, api_key) as client:
        with answered(gateway):
            known = client.keys()
        target = next((k for k in known if k["id"] == name_or_id), None) or next(
            (k for k in known if k["name"] == name_or_id), None
        )
        hint = f"{name_or_id!r} is neither a key's name nor its id; see `llmops keys list`"
        with answered(gateway, not_found_hint=None if target else hint):
            record = client.revoke_key(target["id"] if target else name_or_id)
    record = {field: value for field, value in record.items() if field != "key"}
    if as_json:
        _echo_json(record)
        return
    roles = format_roles(record.get("roles") or {})
    label = Text.assemble("API key ", (record["name"], "bold"), f" (id {record['id']}, {roles})")
    if target is not None and target.get("revokedAt"):
        when, by = _when(record.get("revokedAt")), record.get("revokedBy")
        console.print(Text.assemble(label, f" was already revoked at {when} by {by}; no change"))
        return
    console.print(Text.assemble("revoked ", label, ": requests with it are refused from now on"))


def audit(
    actor: Annotated[str | None, typer.Option(help="who: a key's name, an OIDC subject")] = None,
    operation: Annotated[
        str | None, typer.Option(help="METHOD and route, e.g. 'POST /keys'")
    ] = None,
    entity_kind: Annotated[
        str | None, typer.Option(help="e.g. api_key, training_job, serving_endpoint")
    ] = None,
    entity_id: Annotated[str | None, typer.Option(help="the entity's id")] = None,
    environment: Annotated[str | None, typer.Option(help="dev | stg | prod")] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="how it ended")] = None,
    since: Annotated[
        str | None, typer.Option(help="from this time on: ISO 8601 (UTC unless an offset) or 2h")
    ] = None,
    until: Annotated[str | None, typer.Option(help="before this time (as --since)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="records per page")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="records to skip (paging)")] = 0,
    as_json: AsJson = False,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """The gateway's audit log, newest first: every mutation and every refused attempt."""
    if environment is not None and environment not in ENVIRONMENTS:
        raise typer.BadParameter(
            f"{environment!r} is not one of {', '.join(ENVIRONMENTS)}", param_hint="--environment"
        )
    filters: dict[str, str | int | None] = {
        "actor": actor,
        "operation": operation,
        "entityKind": entity_kind,
        "entityId": entity_id,
        "environment": environment,
        "outcome": outcome.value if outcome is not None else None,
        "since": parse_time(since, "--since", relative=True).isoformat() if since else None,
        "until": parse_time(until, "--until", relative=True).isoformat() if until else None,
        "limit": limit,
        "offset": offset,
    }
    with client_for(gateway, api_key) as client, answered(gateway):
        page = client.audit(**filters)
    if as_json:
        _echo_json(page)
        return
    items: list[dict[str, Any]] = page.get("items") or []
    if not items:
        console.print("no audit records match")
        return
    table = Table(title="audit log, newest first")
    for column in ("at", "actor", "operation", "entity", "env", "outcome", "code", "note"):
        table.add_column(column)
    for item in items:
        entity = "/".join(
            str(part) for part in (item.get("entityKind"), item.get("entityId")) if part
        )
        outcome_text = str(item.get("outcome"))
        table.add_row(
            Text(_when(item.get("at"))), Text(item.get("actor") or f"({item.get('actorKind')})"),
            Text(item.get("operation") or ""), Text(entity), Text(item.get("environment") or ""),
            Text(outcome_text, _OUTCOME_STYLE.get(outcome_text, "")),
            Text(str(item.get("statusCode", ""))), Text(item.get("note") or ""),
        )  # fmt: skip
    console.print(table)
    if len(items) >= limit:
        console.print(f"more may follow: --offset {offset + len(items)}")
