"""github-sync benchmark: seconds from ``create_model_version`` to the values file committed.

    uv run python bench/github_sync.py [--samples 5] [--poll-samples 3] [--poll-interval 60]

Starts the real local stack (``llmops up``: private Redis, MLflow on SQLite with webhooks,
gateway and every worker) twice in temporary directories, and measures, per model version, the
time from calling ``MlflowClient.create_model_version`` to ``<run_id>.yaml`` being on ``main``
of github-sync's repository (the local bare repo, read with ``git show``):

* **webhook path**: MLflow calls the tracking worker's receiver, which publishes on
  ``llmops.models``; github-sync renders and commits;
* **polling path**: the webhook points at a closed port (a lost delivery), so only the
  reconciliation poller (every ``--poll-interval`` seconds, the seed's 60 by default) sees the
  version. The seed's own service works this way: its delay is up to one interval.

It also times a bare ``git commit`` + ``git push`` to a local bare repo in the same run: the
floor of any sync. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mlflow.tracking import MlflowClient

from llmops_cli.embedded_redis import EmbeddedRedis, free_port
from local_stack import Stack, running_stack


def committed(bare: Path, run_id: str) -> bool:
    shown = subprocess.run(
        ["git", "--git-dir", str(bare), "cat-file", "-e", f"main:{run_id}.yaml"],
        capture_output=True,
        check=False,
    )
    return shown.returncode == 0


def one_sample(client: MlflowClient, experiment: str, bare: Path, timeout_s: float) -> float:
    """Seconds from create_model_version to the commit of that version's values file."""
    run = client.create_run(experiment)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    started = time.monotonic()
    client.create_model_version(  # no client-side wait for READY: time the server alone
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
        await_creation_for=0,
    )  # fmt: skip
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if committed(bare, run.info.run_id):
            return time.monotonic() - started
        time.sleep(0.01)
    raise SystemExit(f"no commit for {name} within {timeout_s:.0f} s")


def measure(
    stack: Stack, samples: int, timeout_s: float, *, warm_up: bool, spread_s: float = 0.0
) -> list[float]:
    """``samples`` delays; ``spread_s`` waits a random share of it before each, so versions
    land at random points of the poller's cycle (sequential samples would all start right
    after a poll and wait a whole interval)."""
    client = MlflowClient(stack.mlflow_url)
    experiment = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")
    bare = stack.data_dir / "github-sync" / "values.git"
    if warm_up:  # the webhook is registered and MLflow's webhook cache (5 s here) is fresh
        time.sleep(6)
        one_sample(client, experiment, bare, timeout_s)
    delays = []
    for _ in range(samples):
        time.sleep(random.uniform(0, spread_s))
        delays.append(one_sample(client, experiment, bare, timeout_s))
        print(f"  {delays[-1]:.3f} s", file=sys.stderr, flush=True)
    return delays


def git_floor(tmp: Path, samples: int = 10) -> list[float]:
    """A commit + push of one small file to a local bare repo, with git alone."""
    bare, work = tmp / "floor.git", tmp / "floor"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    git = ["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@b"]
    times = []
    for i in range(samples):
        started = time.monotonic()
        (work / f"{i}.yaml").write_text(f"global:\n  runid: r{i}\n")
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"r{i}"], check=True)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main"], check=True)
        times.append(time.monotonic() - started)
    return times


def summary(label: str, values: list[float]) -> str:
    return (
        f"| {label} | {len(values)} | {statistics.median(values):.2f} | {min(values):.2f} | "
        f"{max(values):.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5, help="versions, webhook path")
    parser.add_argument("--poll-samples", type=int, default=3, help="versions, polling path")
    parser.add_argument("--poll-interval", type=float, default=60.0, help="seconds (seed: 60)")
    args = parser.parse_args()
    timeout_s = args.poll_interval * 2 + 60

    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as tmp, EmbeddedRedis() as redis:
        root = Path(tmp)
        floor = git_floor(root)
        webhook_dir, polling_dir = root / "webhook", root / "polling"
        webhook_dir.mkdir()
        polling_dir.mkdir()
        interval = {"POLLING_INTERVAL": str(args.poll_interval), "LOG_LEVEL": "INFO"}
        with running_stack(webhook_dir, redis.url, interval) as stack:
            print("webhook path:", file=sys.stderr)
            webhook = measure(stack, args.samples, timeout_s, warm_up=True)
        lost = f"http://127.0.0.1:{free_port()}/mlflow/webhook"  # nothing listens there
        with running_stack(
            polling_dir, redis.url, {**interval, "MLFLOW_WEBHOOK_URL": lost}
        ) as stack:
            print("polling path:", file=sys.stderr)
            polling = measure(
                stack, args.poll_samples, timeout_s, warm_up=False, spread_s=args.poll_interval
            )

    print(
        f"# github-sync benchmark: {platform.node()}, Python {platform.python_version()}; "
        f"poll interval {args.poll_interval:g} s"
    )
    print()
    print("| path | versions | median, s | min, s | max, s |")
    print("| --- | --- | --- | --- | --- |")
    print(summary("webhook (MLflow -> tracking -> github-sync -> git)", webhook))
    print(summary(f"polling only (every {args.poll_interval:g} s)", polling))
    print(summary("floor: git commit + push alone", floor))


if __name__ == "__main__":
    main()
