"""Principals through the real app: stored API keys (made once, hashed, revoked, expired), OIDC
tokens from a local issuer mapped to roles, and the audit log every mutation and refusal
writes (who, what, where, outcome), append-only."""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from llmops_gateway.app import ConfigurationError, create_app
from llmops_gateway.config import GatewaySettings

from integration.gateway.harness import API, NO_CREDENTIAL, Gateway, auth
from support.oidc_issuer import OidcIssuer

pytestmark = pytest.mark.integration

_SQL_CHANGE = re.compile(r"\b(UPDATE\s+audit_log|DELETE\s+FROM\s+audit_log)\b", re.IGNORECASE)
_MADE = re.compile(r"(?<!class )AuditRecord\(")
GATEWAY_SRC = Path(__file__).parents[3] / "services" / "gateway" / "src" / "llmops_gateway"


@pytest.fixture
def idp() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


async def _audit(gateway: Gateway, **filters: str) -> list[dict[str, Any]]:
    response = await gateway.client.get(f"{API}/audit", params=filters)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_key_is_shown_once_stored_hashed_and_revoked_at_once(gateway: Gateway) -> None:
    made = await gateway.client.post(
        f"{API}/keys", json={"name": "ci-bot", "roles": {"dev": "operator", "prod": "viewer"}}
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("llmops_")
    assert made.json()["createdBy"] == "API_KEYS#1"
    with gateway.state.engine.connect() as conn:
        digest = conn.execute(sa.text("SELECT digest FROM api_keys")).scalar_one()
        stored = " ".join(str(v) for v in conn.execute(sa.text("SELECT * FROM api_keys")).one())
    assert key not in stored  # only the digest
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    listed = (await gateway.client.get(f"{API}/keys")).json()["items"]
    assert [(k["name"], k["roles"]) for k in listed] == [
        ("ci-bot", {"dev": "operator", "prod": "viewer"})
    ]
    assert "key" not in listed[0]

    jobs = await gateway.client.get(f"{API}/training/jobs", headers=auth(key))
    assert jobs.status_code == 200
    again = await gateway.client.post(
        f"{API}/keys", json={"name": "ci-bot", "roles": {"*": "viewer"}}
    )
    assert again.status_code == 409

    revoked = await gateway.client.delete(f"{API}/keys/{made.json()['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revokedBy"] == "API_KEYS#1"
    refused = await gateway.client.get(f"{API}/training/jobs", headers=auth(key))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key 'ci-bot' was revoked"
    [tried] = await _audit(gateway, outcome="refused")  # who tried, and why
    assert (tried["actor"], tried["actorKind"], tried["note"]) == (
        "ci-bot",
        "unauthenticated",
        "API key 'ci-bot' was revoked",
    )


async def test_an_expired_key_and_a_forged_one_are_refused(gateway: Gateway) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    made = await gateway.client.post(
        f"{API}/keys",
        json={"name": "short", "roles": {"*": "viewer"}, "expiresAt": soon.isoformat()},
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    with gateway.state.engine.begin() as conn:  # let it expire without waiting
        conn.execute(
            sa.text("UPDATE api_keys SET expires_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(seconds=1), "id": key_id},
        )
    expired = await gateway.client.get(f"{API}/training/jobs", headers=auth(key))
    assert expired.status_code == 401
    assert "API key 'short' expired at" in expired.json()["detail"]
    forged = f"llmops_{key_id}_{'A' * 43}"  # a real id, a guessed secret
    answer = await gateway.client.get(f"{API}/training/jobs", headers=auth(forged))
    assert (answer.status_code, answer.json()["detail"]) == (401, "invalid API key")
    past = await gateway.client.post(
        f"{API}/keys",
        json={"name": "late", "roles": {"*": "viewer"}, "expiresAt": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 422
    bad_role = await gateway.client.post(
        f"{API}/keys", json={"name": "odd", "roles": {"qa": "viewer"}}
    )
    assert bad_role.status_code == 422
    assert "unknown environment 'qa'" in bad_role.text


async def test_oidc_tokens_map_groups_to_roles(
    start_gateway: Callable[..., Any], idp: OidcIssuer
) -> None:
    gateway: Gateway = await start_gateway(
        oidc_issuer=idp.issuer,
        oidc_audience=idp.audience,
        oidc_role_map={"ml-dev": ["dev:operator"], "ml-admins": ["admin"]},
        oidc_subject_claim="email",
    )
    dev = idp.issue({"email": "ada@example.com", "groups": ["ml-dev"]})
    listed = await gateway.client.get(f"{API}/training/jobs", headers=auth(dev))
    assert listed.status_code == 200
    keys = await gateway.client.get(f"{API}/keys", headers=auth(dev))
    assert keys.status_code == 403
    assert keys.json()["detail"] == (
        "'oidc:ada@example.com' needs the admin role in every environment (dev, stg, prod) "
        "(holds dev: operator)"
    )
    nobody = idp.issue({"email": "eve@example.com", "groups": ["other"]})
    answer = await gateway.client.get(f"{API}/catalog/models", headers=auth(nobody))
    assert answer.status_code == 403  # a valid identity without a role
    expired = idp.issue({"exp": 1_000_000})
    answer = await gateway.client.get(f"{API}/catalog/models", headers=auth(expired))
    assert answer.status_code == 401
    assert answer.json()["detail"].startswith("OIDC token refused: token expired")
    unsigned = idp.issue_unsigned({"groups": ["ml-admins"]})
    answer = await gateway.client.get(f"{API}/catalog/models", headers=auth(unsigned))
    assert answer.status_code == 401

    admin = idp.issue({"email": "root@example.com", "groups": ["ml-admins"]})
    changed = await gateway.client.put(
        f"{API}/integrations/configs/prod/model_registry",
        json={"enabled": False, "changedBy": "someone else"},
        headers=auth(admin),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["changedBy"] == "oidc:root@example.com"
    [record] = await _audit(gateway, entityKind="integration_config")
    assert record["actor"] == "oidc:root@example.com"
    assert record["actorKind"] == "oidc"
    assert record["note"] == "client's changedBy: someone else"
    assert (record["entityId"], record["environment"]) == ("prod/model_registry", "prod")

    idp.down = True  # the issuer cannot be asked: 503, not 401
    fresh = OidcIssuer.stranger_key("unknown-kid")
    answer = await gateway.client.get(f"{API}/catalog/models", headers=auth(idp.issue(key=fresh)))
    assert answer.status_code == 503


async def test_every_mutation_and_every_refusal_is_audited(gateway: Gateway) -> None:
    await gateway.register_base_model()
    submitted = await gateway.submit(headers={"X-Correlation-ID": "corr-audit"})
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    await gateway.client.get(f"{API}/training/jobs")  # a read: not audited
    refused = await gateway.client.post(
        f"{API}/training/jobs/{job_id}/cancel", json={}, headers=NO_CREDENTIAL
    )
    assert refused.status_code == 401
    await gateway.client.get(f"{API}/catalog/models", headers=auth("wrong"))  # refused read

    records = await _audit(gateway)
    assert [(r["operation"], r["outcome"], r["statusCode"]) for r in records] == [
        ("GET /catalog/models", "refused", 401),
        ("POST /training/jobs/{job_id}/cancel", "refused", 401),
        ("POST /training/jobs", "succeeded", 202),
        ("POST /catalog/models", "succeeded", 201),
    ]
    cancel, submit = records[1], records[2]
    assert (cancel["actor"], cancel["actorKind"], cancel["entityId"]) == (
        None,
        "unauthenticated",
        job_id,
    )
    assert (submit["actor"], submit["entityKind"], submit["entityId"]) == (
        "API_KEYS#1",
        "training_job",
        job_id,
    )
    assert (submit["environment"], submit["correlationId"]) == ("dev", "corr-audit")
    assert await _audit(gateway, outcome="refused", operation="GET /catalog/models") == [records[0]]
    assert len(await _audit(gateway, limit="1", offset="1")) == 1


def test_no_code_updates_or_deletes_an_audit_record() -> None:
    """The log is append-only: no module of the gateway issues UPDATE/DELETE on it (the only
    writer inserts), whatever the SQL spelling."""
    offenders = []
    for path in GATEWAY_SRC.rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            called = isinstance(node, ast.Call) and getattr(node.func, "id", "")
            if called in {"update", "delete"} and any(
                "AuditRecord" in ast.unparse(arg)
                for arg in node.args  # type: ignore[attr-defined]
            ):
                offenders.append(f"{path.name}:{node.lineno}")
            sql = node.value if isinstance(node, ast.Constant) else None
            if isinstance(sql, str) and _SQL_CHANGE.search(sql):
                offenders.append(f"{path.name}:{node.lineno}")
        if "session.delete(" in text and "AuditRecord" in text:
            offenders.append(path.name)
    writers = [p.name for p in GATEWAY_SRC.rglob("*.py") if _MADE.search(p.read_text())]
    assert offenders == []
    assert writers == ["audit.py"]  # domain/audit.py: record_audit, an INSERT


async def test_viewers_do_not_see_stored_specs_or_dead_letter_events(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    made = await gateway.client.post(f"{API}/keys", json={"name": "v", "roles": {"*": "viewer"}})
    viewer = auth(made.json()["key"])
    seen = (await gateway.client.get(f"{API}/training/jobs/{job_id}", headers=viewer)).json()
    assert seen["trainJobSpec"] is None
    [listed] = (await gateway.client.get(f"{API}/training/jobs", headers=viewer)).json()["items"]
    assert listed["trainJobSpec"] is None
    full = (await gateway.client.get(f"{API}/training/jobs/{job_id}")).json()
    assert full["trainJobSpec"]["model_family"] == "llama"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/catalog/datasets",
            {"name": "d", "type": "sft_pair", "storageUri": "s3://AKIA:wJalrXUt@bucket/data"},
            "storageUri",
        ),
        (
            "/catalog/datasets",
            {
                "name": "p",
                "type": "sft_pair",
                "storageUri": "https://b.s3.amazonaws.com/d?X-Amz-Credential=AKIA&X-Amz-Signature=ff",
            },
            "storageUri",
        ),
        (
            "/catalog/models",
            {
                "name": "m",
                "family": "llama",
                "maxPositionEmbeddings": 8,
                "storageUri": "https://ghp_token123@example.com/m",
            },
            "storageUri",
        ),
    ],
)
async def test_a_uri_with_credentials_is_refused_and_nothing_kept(
    gateway: Gateway, path: str, body: dict[str, Any], field: str
) -> None:
    response = await gateway.client.post(f"{API}{path}", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert "credentials in a URI are refused" in error["msg"]
    assert "wJalrXUt" not in response.text
    assert "ghp_token123" not in response.text
    assert "X-Amz-Signature=ff" not in response.text
    assert gateway.count("catalog_datasets") + gateway.count("catalog_models") == 0


async def test_no_secret_reaches_logs_events_dead_letters_or_answers(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scan everything the gateway writes or answers while keys are made, used, refused and
    revoked: neither a configured key, nor a made key, nor a wrong one a client sent, appears
    in the logs, the streams (dead letters included), the audit log or any answer."""
    made = await gateway.client.post(f"{API}/keys", json={"name": "s", "roles": {"*": "admin"}})
    made_key = made.json()["key"]
    wrong = "llmops_0123456789ab_" + "S" * 43
    answers = [made.text.replace(made_key, "")]  # the one answer that shows it, once
    await gateway.register_base_model()
    calls = [
        ("POST", "/training/jobs", auth(made_key)),
        ("GET", "/training/jobs", auth(wrong)),
        ("GET", "/events/dlq", auth(made_key)),
        ("GET", "/health", auth("not-a-key-" + "x" * 30)),
        ("GET", "/health/integrations", auth(made_key)),
        ("GET", "/integrations/configs", auth(made_key)),
        ("GET", "/keys", auth(made_key)),
        ("DELETE", f"/keys/{made.json()['id']}", auth(made_key)),
        ("GET", "/keys", auth(made_key)),  # revoked now: refused
        ("GET", "/audit", {}),
    ]
    for method, path, headers in calls:
        body = {"trainJobSpec": {}} if method == "POST" else None
        answers.append((await gateway.client.request(method, API + path, json=body,
                                                     headers=headers)).text)  # fmt: skip
    streams = []
    async for key in gateway.redis.scan_iter(match=f"{gateway.namespace}*"):
        if await gateway.redis.type(key) == b"stream":
            streams += [str(fields) for _, fields in await gateway.redis.xrange(key)]
    with gateway.state.engine.connect() as conn:
        audit = [str(row) for row in conn.execute(sa.text("SELECT * FROM audit_log")).all()]
    written = "\n".join([capsys.readouterr().out, *answers, *streams, *audit])
    assert len(audit) >= 4
    for secret in ("test-key-primary", made_key, wrong, "x" * 30):
        assert secret not in written


def test_unsafe_or_broken_auth_settings_refuse_to_start(
    make_settings: Callable[..., Any],
) -> None:
    with pytest.raises(ConfigurationError, match="AUTH_DISABLED=true is refused with ENVIRONMENT"):
        create_app(make_settings(api_keys=[], auth_disabled=True, environment="prod"))
    with pytest.raises(ConfigurationError, match=r"OIDC_ISSUER .* must be https"):
        create_app(make_settings(oidc_issuer="http://sso.example.com/realms/ml",
                                 oidc_audience="llmops"))  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"OIDC settings: .*unknown environment 'qa'"):
        create_app(make_settings(oidc_issuer="https://sso.example.com", oidc_audience="x",
                                 oidc_role_map={"g": ["qa:admin"]}))  # fmt: skip


def test_a_malformed_api_keys_setting_does_not_print_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_KEYS", '["supersecretkey1", ]')
    with pytest.raises(ValidationError) as refused:
        GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    assert "supersecretkey1" not in str(refused.value)
    assert "api_keys" in str(refused.value)


async def test_an_unexpected_error_and_a_long_correlation_id_are_still_audited(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_id = "c" * 256  # accepted by the API: the audit record must keep it
    made = await gateway.client.post(
        f"{API}/keys",
        json={"name": "k1", "roles": {"*": "viewer"}},
        headers={"X-Correlation-ID": long_id},
    )
    assert made.status_code == 201
    [record] = await _audit(gateway, entityKind="api_key")
    assert record["correlationId"] == long_id

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug after the commit")

    monkeypatch.setattr("llmops_gateway.api.operations.keys.list_keys", broken)
    with pytest.raises(RuntimeError):  # the test client re-raises what the app did not handle
        await gateway.client.get(f"{API}/keys")
    failed = await _audit(gateway, outcome="failed")
    assert [(r["operation"], r["statusCode"]) for r in failed] == [("GET /keys", 500)]
