"""The console in a real headless Chromium (Playwright, the machine's browser) against the real
gateway served over TCP, on SQLite and the real Redis.

What a person does: signs in with an API key, submits a job (through the API, as the CLI
would), watches its timeline and status change live without reloading, opens its lineage and
follows it to the model version, replays a dead letter as an admin, and is refused as a viewer.
With ``CONSOLE_SCREENSHOTS=<dir>`` the test also saves the screenshots of docs/console.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, expect

from llmops_shared.events import Phase, new_seq

from integration.gateway.harness import API_KEY, Gateway, job_report, pipeline_report
from support.chromium import chromium
from support.served import served
from support.streams import wait_until

pytestmark = pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
STAGES = ["prepare-data", "train", "evaluate", "register"]


async def shot(page: Page, name: str) -> None:
    """Save the page for docs/console.md when ``CONSOLE_SCREENSHOTS`` names a directory."""
    if SHOTS:
        folder = Path(SHOTS)
        folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, a local directory
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def sign_in(context: BrowserContext, base_url: str, key: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base_url}/console/jobs")
    await expect(page.get_by_label("API key or token")).to_be_visible()
    await page.get_by_label("API key or token").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Training jobs")).to_be_visible()
    return page


def nodes(*phases: str) -> list[dict[str, str]]:
    return [{"name": name, "phase": phase} for name, phase in zip(STAGES, phases, strict=False)]


async def test_a_job_timeline_updates_live_and_leads_to_its_lineage(gateway: Gateway) -> None:
    async with served(gateway.app) as base_url, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await sign_in(context, base_url, API_KEY)

        job_id = await gateway.submitted_job()  # through the API, as the CLI does
        await page.goto(f"{base_url}/console/jobs")
        await page.locator(f'tr[data-job="{job_id}"] a').click()
        await expect(page.get_by_test_id("job-status")).to_have_text("Pending")
        await expect(page.locator("[data-live-state].on")).to_be_visible()
        await page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        seq = new_seq()
        stages = nodes("Succeeded", "Running", "Pending", "Pending")
        await gateway.publish_status(pipeline_report(job_id, Phase.RUNNING, seq, nodes=stages))
        await gateway.publish_status(job_report(job_id, Phase.RUNNING, seq, reason="training"))
        timeline = page.get_by_test_id("timeline").locator("tbody tr")
        await expect(timeline).to_have_count(2)
        await expect(page.get_by_test_id("job-status")).to_have_text("Running")
        await expect(page.locator('[data-stage="train"].phase-running')).to_be_visible()
        await shot(page, "job-running")

        await gateway.report_trained(job_id)  # pipeline and job Succeeded, model registered
        await expect(timeline).to_have_count(4)
        await expect(page.get_by_test_id("job-status")).to_have_text("Succeeded")
        assert await page.evaluate("window.__sameDocument === true")  # no reload happened

        artifact = gateway.artifact_of(job_id)
        version_node = page.locator(f'[data-key="model-version:{artifact}/1"]')
        await expect(version_node).to_be_visible()
        await shot(page, "job-succeeded")
        await version_node.locator("a").click()
        heading = page.get_by_role("heading", name=f"Model version {artifact}/1")
        await expect(heading).to_be_visible()
        await expect(page.locator(f'[data-key="training-job:{job_id}"]')).to_be_visible()

        await page.goto(f"{base_url}/console/jobs")
        await shot(page, "jobs")
        await context.close()


async def test_an_admin_replays_a_dead_letter_and_a_viewer_is_refused(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    for _ in range(2):  # one to replay, one the viewer still sees meanwhile
        bad = pipeline_report(job_id, Phase.RUNNING, new_seq())
        await gateway.publish_unchecked_status(bad, progress="half way")  # not an object

    async def dead_lettered() -> bool:
        listed = await gateway.client.get("/llm-ops/v1/events/dlq")
        return len(listed.json()["items"]) == 2

    await wait_until(dead_lettered, timeout_s=10)
    created = await gateway.client.post(
        "/llm-ops/v1/keys", json={"name": "console-viewer", "roles": {"*": "viewer"}}
    )
    viewer_key = created.json()["key"]

    async with served(gateway.app) as base_url, chromium() as browser:
        admin = await browser.new_context(viewport={"width": 1360, "height": 800})
        page = await sign_in(admin, base_url, API_KEY)
        await page.get_by_role("link", name="Dead letters").click()
        letter = page.get_by_test_id("dead-letters").locator("tbody tr[data-letter]")
        await expect(letter).to_have_count(2)
        await shot(page, "dead-letters")
        page.once("dialog", lambda dialog: dialog.accept())
        await letter.first.get_by_role("button", name="Replay").click()
        await expect(page.get_by_test_id("replayed")).to_be_visible()
        await page.get_by_role("link", name="Health").click()
        await expect(page.get_by_test_id("integrations")).to_be_visible()
        await shot(page, "health")

        viewer = await browser.new_context()
        page = await sign_in(viewer, base_url, viewer_key)
        await expect(page.get_by_test_id("principal")).to_have_text("console-viewer")
        await page.get_by_role("link", name="Dead letters").click()
        replay = page.get_by_role("button", name="Replay").first
        await expect(replay).to_be_disabled()
        letter_id = await page.locator("tr[data-letter]").first.get_attribute("data-letter")
        status = await page.evaluate(
            """async (id) => (await fetch(`/console/dead-letters/${id}/replay`,
                                          {method: "POST"})).status""",
            letter_id,
        )
        assert status == 403
        await admin.close()
        await viewer.close()
