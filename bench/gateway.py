"""Gateway benchmark: submissions/s and the time from POST to the MLflow run existing.

    uv run python bench/gateway.py [--jobs 300] [--concurrency 8]

Starts the real local stack (``llmops up``: private Redis, MLflow on SQLite, gateway, tracking
worker) in a temporary directory, registers the seed's base model, then POSTs the seed's SFT
job ``--jobs`` times from ``--concurrency`` concurrent clients. It measures:

* **POST latency** and **submissions/s** (validation, SQL transaction with the outbox row);
* **POST -> MLflow run**: from sending the POST to the tracking worker's status event for the
  job's run (the run exists in MLflow before that event is written), read from ``llmops.status``;
* the **raw Redis ceiling** in the same run: one client XADDing the same request's event.

It prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
import yaml

from llmops_cli.embedded_redis import EmbeddedRedis
from llmops_shared.events import Stream, decode_event
from llmops_shared.streams import EVENT_FIELD
from local_stack import start_stack

EXAMPLE = Path(__file__).parents[1] / "examples" / "sft-train-job.yaml"
API = "/llm-ops/v1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def watch_runs(redis_url: str, expected: int, seen: dict[str, float], timeout_s: float) -> None:
    """Record when each job's experiment-run status event arrives (blocking; run in a thread)."""
    client = redis_sync.Redis.from_url(redis_url)
    last = "$"
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        reply = client.xread({str(Stream.STATUS): last}, count=500, block=500)
        now = time.perf_counter()
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                event = decode_event(fields[EVENT_FIELD])
                details: dict[str, Any] = getattr(event.payload, "details", {})
                job_id = details.get("job_id")
                if event.payload.entity == "experiment_run" and job_id and job_id not in seen:
                    seen[job_id] = now


async def submit_all(
    url: str, api_key: str, jobs: int, concurrency: int, rate: float | None
) -> tuple[list[float], dict[str, float], float]:
    """POST ``jobs`` jobs from ``concurrency`` clients, as fast as possible or paced at ``rate``."""
    body = yaml.safe_load(EXAMPLE.read_text())
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {api_key}"}
    begin = time.perf_counter()

    async def client_loop(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            if rate and (delay := begin + index / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            started = time.perf_counter()
            response = await http.post(f"{API}/training/jobs", json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            sent_at[response.json()["id"]] = started

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await asyncio.gather(*(client_loop(http) for _ in range(concurrency)))
    return latencies, sent_at, time.perf_counter() - begin


def measure(
    url: str, api_key: str, redis_url: str, jobs: int, concurrency: int, rate: float | None
) -> dict[str, float]:
    """One phase: submit, wait for every run, and summarise."""
    arrived: dict[str, float] = {}
    watcher = threading.Thread(
        target=watch_runs, args=(redis_url, jobs, arrived, 600.0), daemon=True
    )
    watcher.start()
    time.sleep(0.2)  # the watcher reads from "$": let it start first
    latencies, sent_at, elapsed = asyncio.run(submit_all(url, api_key, jobs, concurrency, rate))
    watcher.join()
    to_run = [(arrived[job] - sent_at[job]) * 1000 for job in sent_at if job in arrived]
    ms = [latency * 1000 for latency in latencies]
    return {
        "submissions_per_s": jobs / elapsed,
        "post_p50": statistics.median(ms),
        "post_p99": percentile(ms, 0.99),
        "runs": len(to_run),
        "run_p50": statistics.median(to_run),
        "run_p99": percentile(to_run, 0.99),
        "run_max": max(to_run),
        "runs_per_s": len(to_run) / (max(arrived.values()) - min(sent_at.values())),
    }


def raw_xadd_rate(redis_url: str, count: int = 5_000) -> float:
    """One client XADDing a submitted job's event, one command at a time."""
    client = redis_sync.Redis.from_url(redis_url)
    payload = EXAMPLE.read_text().encode() * 2  # about the size of a submitted event
    started = time.perf_counter()
    for _ in range(count):
        client.xadd("bench.raw", {"event": payload})
    elapsed = time.perf_counter() - started
    client.delete("bench.raw")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs in the burst phase")
    parser.add_argument("--concurrency", type=int, default=8, help="clients in the burst phase")
    parser.add_argument("--paced-jobs", type=int, default=100, help="jobs in the paced phase")
    parser.add_argument("--rate", type=float, default=4.0, help="jobs/s in the paced phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as tmp, EmbeddedRedis() as redis:
        data_dir = Path(tmp)
        process, url = start_stack(data_dir, redis.url)
        try:
            api_key = (data_dir / "api-key").read_text().strip()
            httpx.post(
                f"{url}{API}/catalog/models",
                json={"name": "llama-3-8b-pretrain-v1", "family": "llama",
                      "max_position_embeddings": 8192},
                headers={"Authorization": f"Bearer {api_key}"},
            ).raise_for_status()  # fmt: skip
            burst = measure(url, api_key, redis.url, args.jobs, args.concurrency, None)
            paced = measure(url, api_key, redis.url, args.paced_jobs, 2, args.rate)
            raw = raw_xadd_rate(redis.url)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)

    print(
        f"# gateway benchmark: {platform.node()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; burst: {args.jobs} jobs from {args.concurrency} clients; "
        f"paced: {args.paced_jobs} jobs at {args.rate:g}/s"
    )
    print()
    print("| measure | burst | paced |")
    print("| --- | --- | --- |")
    rows = [
        ("submissions/s (POST /training/jobs)", "submissions_per_s", "{:,.0f}"),
        ("POST latency p50, ms", "post_p50", "{:.1f}"),
        ("POST latency p99, ms", "post_p99", "{:.1f}"),
        ("POST -> MLflow run p50, ms", "run_p50", "{:,.0f}"),
        ("POST -> MLflow run p99, ms", "run_p99", "{:,.0f}"),
        ("POST -> MLflow run max, ms", "run_max", "{:,.0f}"),
        ("MLflow runs created/s (tracking worker)", "runs_per_s", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        print(f"| {label} | {fmt.format(burst[key])} | {fmt.format(paced[key])} |")
    print(f"| raw Redis ceiling, same run: one client's XADD/s | {raw:,.0f} | |")


if __name__ == "__main__":
    main()
