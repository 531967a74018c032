"""The console's server side over the real app (SQLite and PostgreSQL, real Redis): signing in
with the API's credentials, the roles, the pages and the live stream, the audit trail.

The browser's side (the live timeline without reload, the replay button) is
``tests/browser/test_console.py``, in Chromium.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from llmops_shared.events import Phase, new_seq

from integration.gateway.harness import (
    NO_CREDENTIAL,
    Gateway,
    job_report,
    pipeline_report,
    serving_request,
)
from support.served import served

CONSOLE = "/console"
SAME_ORIGIN = {"Origin": "http://gateway"}


async def viewer_key(gateway: Gateway, name: str = "console-viewer") -> str:
    response = await gateway.client.post(
        "/llm-ops/v1/keys", json={"name": name, "roles": {"*": "viewer"}}
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def key_id(key: str) -> str:
    return key.split("_")[1]  # llmops_<id>_<secret>


def browser(gateway: Gateway) -> httpx.AsyncClient:
    """A client with no Authorization header, keeping cookies, like a browser."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway"
    )


async def sign_in(client: httpx.AsyncClient, key: str, origin: str = "http://gateway") -> None:
    response = await client.post(
        f"{CONSOLE}/sign-in",
        content=f"credential={key}&next=/console/jobs",
        headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/jobs"


async def test_a_page_without_credential_leads_to_the_sign_in_form(gateway: Gateway) -> None:
    async with browser(gateway) as client:
        response = await client.get(f"{CONSOLE}/jobs?status=Running", follow_redirects=True)
    assert response.status_code == 200
    assert response.url.path == "/console/sign-in"
    assert 'name="credential"' in response.text
    assert 'value="/console/jobs?status=Running"' in response.text  # back where it was asked
    assert "script-src 'self'" in response.headers["content-security-policy"]
    audit = (await gateway.client.get("/llm-ops/v1/audit")).json()["items"]
    assert not [r for r in audit if r["path"].startswith("/console")]  # a visit, no attempt


async def test_signing_in_keeps_the_key_in_a_strict_http_only_cookie(gateway: Gateway) -> None:
    key = await viewer_key(gateway)
    async with browser(gateway) as client:
        await sign_in(client, key)
        cookie = next(c for c in client.cookies.jar if c.name == "llmops_console")
        assert cookie.path == "/console"
        assert cookie.has_nonstandard_attr("HttpOnly")
        page = await client.get(f"{CONSOLE}/jobs")
    assert page.status_code == 200
    assert "console-viewer" in page.text
    assert key not in page.text  # the page never shows the key back
    assert "dev: viewer" in page.text


async def test_a_refused_key_signs_nobody_in_and_is_audited(gateway: Gateway) -> None:
    async with browser(gateway) as client:
        response = await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=llmops_nope_nope",
            headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 401
        assert "llmops_console" not in client.cookies
    assert "invalid" in response.text.lower()
    audit = (await gateway.client.get("/llm-ops/v1/audit", params={"limit": 5})).json()
    refused = [r for r in audit["items"] if r["operation"] == "POST /console/sign-in"]
    assert [r["outcome"] for r in refused[:1]] == ["refused"]


async def test_a_revoked_key_is_signed_out_at_its_next_page(gateway: Gateway) -> None:
    key = await viewer_key(gateway, "soon-revoked")
    async with browser(gateway) as client:
        await sign_in(client, key)
        assert (await client.get(f"{CONSOLE}/jobs")).status_code == 200
        revoked = await gateway.client.delete(f"/llm-ops/v1/keys/{key_id(key)}")
        assert revoked.status_code == 200, revoked.text
        response = await client.get(f"{CONSOLE}/jobs")
        assert "llmops_console" not in client.cookies  # the refused key is forgotten
    assert response.status_code == 401
    assert "revoked" in response.text


async def test_a_form_from_another_site_is_refused(gateway: Gateway) -> None:
    async with browser(gateway) as client:
        response = await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=whatever",
            headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
        )
    assert response.status_code == 403
    assert "another site" in response.text


async def test_the_job_page_shows_the_timeline_dag_and_lineage(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    seq = new_seq()
    before = gateway.count("processed_events")
    nodes = [{"name": "prepare-data", "phase": "Succeeded"}, {"name": "train", "phase": "Running"}]
    await gateway.publish_status(pipeline_report(job_id, Phase.RUNNING, seq, nodes=nodes))
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, seq, reason="training"))
    await gateway.wait_processed(before + 2)

    key = await viewer_key(gateway)
    async with browser(gateway) as client:
        await sign_in(client, key)
        listing = await client.get(f"{CONSOLE}/jobs", params={"status": "Running"})
        page = await client.get(f"{CONSOLE}/jobs/{job_id}")
        other = await client.get(f"{CONSOLE}/jobs", params={"status": "Failed"})
    assert listing.status_code == 200
    assert job_id in listing.text
    assert job_id not in other.text  # the filter narrows
    assert page.status_code == 200
    assert 'data-testid="pipeline-dag"' in page.text
    assert 'data-stage="train"' in page.text
    assert 'data-testid="lineage"' in page.text
    assert f'data-key="training-job:{job_id}"' in page.text
    assert page.text.count('data-row="') == 2  # both reports, in the order folded
    assert "training" in page.text


async def test_the_live_stream_sends_reports_after_the_page(gateway: Gateway) -> None:
    """Over a real socket: the ASGI test transport returns a body only once it is complete."""
    job_id = await gateway.submitted_job()
    key = await viewer_key(gateway)
    got: list[dict[str, Any]] = []

    async def follow() -> None:
        async with client.stream("GET", f"{CONSOLE}/jobs/{job_id}/live?after=0") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line.removeprefix("data: ")))
                    if len(got) == 2:
                        return

    async with served(gateway.app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        await sign_in(client, key, origin=base_url)
        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        seq = new_seq()
        await gateway.publish_status(job_report(job_id, Phase.RUNNING, seq))
        await gateway.publish_status(job_report(job_id, Phase.FAILED, seq + 1, reason="OOM"))
        await asyncio.wait_for(follower, timeout=10)
    assert [m["phase"] for m in got] == ["Running", "Failed"]
    assert got[1]["reason"] == "OOM"
    assert got[0]["id"] < got[1]["id"]


async def test_a_viewer_cannot_replay_a_dead_letter(gateway: Gateway) -> None:
    key = await viewer_key(gateway)
    async with browser(gateway) as client:
        await sign_in(client, key)
        listing = await client.get(f"{CONSOLE}/dead-letters")
        refused = await client.post(
            f"{CONSOLE}/dead-letters/llmops.training:1-0/replay", headers=SAME_ORIGIN
        )
    assert listing.status_code == 200
    assert refused.status_code == 403
    assert "admin role in every environment" in refused.text
    audit = (await gateway.client.get("/llm-ops/v1/audit", params={"limit": 5})).json()
    assert any(
        r["operation"] == "POST /console/dead-letters/{letter_id}/replay"
        and r["outcome"] == "refused"
        and r["actor"] == "console-viewer"
        for r in audit["items"]
    )


@pytest.mark.parametrize(
    "path", ["/jobs", "/endpoints", "/datasets", "/models", "/dead-letters", "/health"]
)
async def test_every_list_page_renders_for_an_admin(gateway: Gateway, path: str) -> None:
    await gateway.submitted_job()
    async with browser(gateway) as client:
        response = await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=test-key-primary",
            headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303
        page = await client.get(f"{CONSOLE}{path}")
    assert page.status_code == 200, page.text
    assert 'aria-current="page"' in page.text


async def test_an_unknown_job_is_a_404_page(gateway: Gateway) -> None:
    async with browser(gateway) as client:
        await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=test-key-primary",
            headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
        page = await client.get(f"{CONSOLE}/jobs/nope")
    assert page.status_code == 404
    assert "no training job" in page.text


async def test_the_api_never_reads_the_console_cookie(gateway: Gateway) -> None:
    """The cookie is for /console only; the API wants its bearer (no CSRF on the API)."""
    response = await gateway.client.get(
        "/llm-ops/v1/training/jobs",
        headers={**NO_CREDENTIAL, "Cookie": "llmops_console=test-key-primary"},
    )
    assert response.status_code == 401


async def test_an_older_report_is_in_the_timeline_marked_as_changing_nothing(
    gateway: Gateway,
) -> None:
    job_id = await gateway.submitted_job()
    seq = new_seq()
    before = gateway.count("processed_events")
    await gateway.publish_status(job_report(job_id, Phase.RUNNING, seq + 10, reason="newer"))
    await gateway.publish_status(job_report(job_id, Phase.PENDING, seq, reason="older"))
    await gateway.wait_processed(before + 2)
    assert gateway.count("status_history") == 2

    async with browser(gateway) as client:
        await sign_in(client, "test-key-primary")
        page = await client.get(f"{CONSOLE}/jobs/{job_id}")
    rows = page.text.split('data-row="')[1:]
    assert len(rows) == 2
    assert "stale" not in rows[0].split("</tr>")[0]
    assert 'class="stale"' in rows[1].split("</tr>")[0]
    assert "older" in rows[1]


async def test_a_viewer_of_another_environment_sees_nothing_of_this_one(gateway: Gateway) -> None:
    """The gateway runs in dev; a key that views prod only gets no dev job page, no dev
    endpoint (list, page, live stream), exactly as the API refuses them."""
    job_id = await gateway.submitted_job()
    await gateway.report_trained(job_id)  # the job registered the model the endpoint serves
    model = await gateway.register_trained_model()
    created = await gateway.create_endpoint(serving_request(model["id"], environment="dev"))
    assert created.status_code == 202, created.text
    endpoint_id = created.json()["id"]
    response = await gateway.client.post(
        "/llm-ops/v1/keys", json={"name": "prod-viewer", "roles": {"prod": "viewer"}}
    )
    key = response.json()["key"]

    async with browser(gateway) as client:
        await sign_in(client, key)
        jobs = await client.get(f"{CONSOLE}/jobs")
        job = await client.get(f"{CONSOLE}/jobs/{job_id}")
        live = await client.get(f"{CONSOLE}/jobs/{job_id}/live")
        listing = await client.get(f"{CONSOLE}/endpoints")
        endpoint = await client.get(f"{CONSOLE}/endpoints/{endpoint_id}")
        endpoint_live = await client.get(f"{CONSOLE}/endpoints/{endpoint_id}/live")
    for refused in (jobs, job, live, endpoint, endpoint_live):
        assert refused.status_code == 403, refused.request.url
        assert "needs the viewer role in dev" in refused.text
    assert listing.status_code == 200
    assert endpoint_id not in listing.text


async def test_a_huge_or_foreign_form_is_refused_unread(gateway: Gateway) -> None:
    async with browser(gateway) as client:
        big = await client.post(
            f"{CONSOLE}/sign-in",
            content=b"credential=" + b"x" * 20_000,
            headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
        opaque = await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=test-key-primary",
            headers={"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"},
        )
        token = await client.post(
            f"{CONSOLE}/sign-in",
            content="credential=" + "t" * 5_000,
            headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert big.status_code == 401
    assert "too large" in big.text
    assert opaque.status_code == 403
    assert token.status_code == 422
    assert "API key" in token.text
