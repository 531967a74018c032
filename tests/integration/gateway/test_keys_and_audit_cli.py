"""``llmops keys`` and ``llmops audit``: the commands as an admin runs them, over HTTP against
the gateway under test (served by uvicorn on a free local port), on both databases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from llmops_cli.app import app as cli_app

from integration.gateway.harness import API, API_KEY, Gateway, auth
from integration.gateway.test_models_cli import served

pytestmark = pytest.mark.integration

KEY = re.compile(r"llmops_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def llmops(url: str, *args: str, key: str = API_KEY) -> Result:
    """One ``llmops`` command against the served gateway, as ``key``'s holder."""
    result = CliRunner().invoke(
        cli_app, [*args, "--gateway", url, "--api-key", key], env={"COLUMNS": "200"}
    )
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def parsed(result: Result) -> Any:
    """The ``--json`` document: stdout alone (warnings go to stderr)."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_a_key_is_printed_once_works_with_its_roles_and_is_revoked_by_name(
    gateway: Gateway,
) -> None:
    with served(gateway) as url:
        made = llmops(url, "keys", "create", "ci-bot", "--role", "dev=operator",
                      "--role", "prod:viewer")  # fmt: skip
        assert made.exit_code == 0, made.output
        [key] = KEY.findall(made.output)  # once
        assert "it will not be shown again" in made.output
        assert "Authorization: Bearer <key>" in made.output
        assert "--api-key" in made.output
        assert "LLMOPS_API_KEY" in made.output
        assert "dev=operator prod=viewer" in made.output

        jobs = await gateway.client.get(f"{API}/training/jobs", headers=auth(key))
        assert jobs.status_code == 200, jobs.text
        not_admin = llmops(url, "keys", "list", key=key)
        assert not_admin.exit_code == 1, not_admin.output
        assert "refused (403)" in not_admin.output
        assert "'ci-bot' needs the admin role in every environment" in not_admin.output

        listed = llmops(url, "keys", "list")
        assert listed.exit_code == 0, listed.output
        assert "ci-bot" in listed.output
        assert "dev=operator prod=viewer" in listed.output
        assert "API_KEYS#1" in listed.output
        assert not KEY.search(listed.output)
        [item] = parsed(llmops(url, "keys", "list", "--json"))["items"]
        assert (item["name"], item["roles"]) == ("ci-bot", {"dev": "operator", "prod": "viewer"})
        assert "key" not in item

        revoked = llmops(url, "keys", "revoke", "ci-bot")
        assert revoked.exit_code == 0, revoked.output
        assert (
            f"revoked API key ci-bot (id {item['id']}, dev=operator prod=viewer)" in revoked.output
        )
        assert "refused from now on" in revoked.output
        after = llmops(url, "keys", "list", key=key)
        assert after.exit_code == 1
        assert "refused (401)" in after.output
        assert "API key 'ci-bot' was revoked" in after.output
        again = llmops(url, "keys", "revoke", item["id"])  # by id; nothing changes
        assert again.exit_code == 0, again.output
        assert "was already revoked" in again.output
        unknown = llmops(url, "keys", "revoke", "nobody")
    answer = await gateway.client.get(f"{API}/training/jobs", headers=auth(key))
    assert answer.status_code == 401
    assert unknown.exit_code == 1
    assert "refused (404)" in unknown.output
    assert "no API key 'nobody'" in unknown.output
    assert "neither a key's name nor its id" in unknown.output


async def test_the_audit_log_shows_creates_revokes_and_refusals_newest_first(
    gateway: Gateway,
) -> None:
    with served(gateway) as url:
        made = parsed(llmops(url, "keys", "create", "ops", "-r", "admin",
                             "--expires-in", "30d", "--json"))  # fmt: skip
        assert made["roles"] == {"*": "admin"}
        assert KEY.fullmatch(made["key"])
        expires = datetime.fromisoformat(made["expiresAt"])
        assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
        revoked = parsed(llmops(url, "keys", "revoke", made["id"], "--json"))
        assert revoked["revokedBy"] == "API_KEYS#1"
        assert "key" not in revoked
        assert llmops(url, "keys", "list", key=made["key"]).exit_code == 1  # refused, audited

        records = parsed(llmops(url, "audit", "--entity-kind", "api_key", "--json"))["items"]
        table = llmops(url, "audit", "--actor", "API_KEYS#1")
        refusals = parsed(llmops(url, "audit", "--outcome", "refused", "--json"))["items"]
        creates = parsed(
            llmops(url, "audit", "--operation", "POST /keys", "--since", "1h", "--json")
        )["items"]
        future = llmops(url, "audit", "--since", "2999-01-01T00:00:00Z")
        first = llmops(url, "audit", "--limit", "1")
        later = parsed(llmops(url, "audit", "--until", "2000-01-01", "--json"))["items"]
    assert [(r["operation"], r["outcome"], r["actor"]) for r in records] == [
        ("GET /keys", "refused", "ops"),  # the revoked key that tried
        ("DELETE /keys/{key_id}", "succeeded", "API_KEYS#1"),
        ("POST /keys", "succeeded", "API_KEYS#1"),
    ]
    assert [r["entityId"] for r in records[1:]] == [made["id"], made["id"]]
    assert table.exit_code == 0, table.output
    assert table.output.index("DELETE /keys/{key_id}") < table.output.index("POST /keys")
    assert f"api_key/{made['id']}" in table.output
    assert "succeeded" in table.output
    assert "GET /keys" not in table.output  # the refusal has no actor
    assert [r["statusCode"] for r in refusals] == [401]
    assert [r["entityId"] for r in creates] == [made["id"]]
    assert future.exit_code == 0
    assert "no audit records match" in future.output
    assert first.exit_code == 0
    assert "more may follow: --offset 1" in first.output
    assert later == []


async def test_bad_input_is_named_without_a_traceback(gateway: Gateway) -> None:
    with served(gateway) as url:
        bad_env = llmops(url, "keys", "create", "odd", "--role", "qa=viewer")
        bad_role = llmops(url, "keys", "create", "odd", "--role", "dev=boss")
        bad_span = llmops(url, "keys", "create", "odd", "--role", "admin", "--expires-in", "3y")
        both = llmops(url, "keys", "create", "odd", "--role", "admin",
                      "--expires-in", "1d", "--expires-at", "2999-01-01")  # fmt: skip
        bad_outcome = llmops(url, "audit", "--outcome", "maybe")
        bad_since = llmops(url, "audit", "--since", "yesterday")
        bad_name = llmops(url, "keys", "create", "has space", "--role", "admin")
        past = llmops(url, "keys", "create", "late", "--role", "admin",
                      "--expires-at", "2020-01-01T00:00:00Z")  # fmt: skip
        assert llmops(url, "keys", "create", "twice", "--role", "admin").exit_code == 0
        taken = llmops(url, "keys", "create", "twice", "--role", "dev=viewer")
    down = llmops("http://127.0.0.1:1", "keys", "list")
    for usage in (bad_env, bad_role, bad_span, both, bad_outcome, bad_since):
        assert usage.exit_code == 2, usage.output
    assert "unknown environment 'qa'" in bad_env.output
    assert "unknown role 'boss'" in bad_role.output
    assert "'3y' is not a duration" in bad_span.output
    assert "not both" in both.output
    assert "'yesterday' is not an ISO 8601 time" in bad_since.output
    for refusal in (bad_name, past, taken, down):
        assert refusal.exit_code == 1, refusal.output
    assert "refused (422)" in bad_name.output
    assert "name: String should match" in bad_name.output
    assert "expiresAt is in the past" in past.output
    assert "refused (409)" in taken.output
    assert "'twice' exists" in taken.output
    assert "no answer from the gateway at http://127.0.0.1:1" in down.output
    assert gateway.count("api_keys") == 1
