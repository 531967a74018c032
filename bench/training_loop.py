"""Training-loop benchmark: the tiny loop's wall time, and the trainer's tokens/s on this machine.

    uv run python bench/training_loop.py [--loops 3] [--json PATH] [--smoke]
    uv run python bench/training_loop.py --gateway-url http://127.0.0.1:8000 --api-key KEY \\
        --mlflow-url http://127.0.0.1:5000 --data-dir .llmops     # against a running `make up`

Starts the real local stack (``llmops up``: private Redis, MLflow on SQLite, every worker, the
local workflow backend) in a temporary directory unless ``--gateway-url`` names a running one.
It puts a tiny Llama into the catalog (``llmops models tiny``), versions the quickstart's
dataset (examples/data/tiny-instructions) and submits examples/tiny-sft-job.yaml ``--loops``
times, one after the other. Per loop it measures:

* **submit -> Succeeded**: from the POST to the job reported Succeeded (all four stages ran
  as processes: prepare-data, train, evaluate, register);
* **submit -> values file**: to ``<run_id>.yaml`` committed by github-sync (the loop closed);
* the **stages'** wall times (from the pipeline's nodes, one-second resolution);
* the **trainer's tokens/s** (``train_tokens_per_second`` of the job's MLflow run).

The **raw ceiling** of the same run: plain PyTorch steps (forward, backward, AdamW) of the same
tiny model with the same LoRA adapter, batch size and sequence length, in this process, with
no data loading, logging or checkpointing: what the trainer's tokens/s is compared against.
And the **floor** of a stage: starting Python and importing what train imports.

``--smoke`` runs one loop and a short ceiling (the test suite runs it so it cannot rot).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from mlflow.tracking import MlflowClient

from llmops_cli.client import GatewayClient
from llmops_cli.embedded_redis import EmbeddedRedis
from local_stack import running_stack

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"
DATASET_FILES = EXAMPLES / "data" / "tiny-instructions"
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """The stack the loop runs on."""

    gateway_url: str
    api_key: str
    mlflow_url: str
    data_dir: Path


def eventually(probe: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.1)
    raise SystemExit(f"{what} not within {timeout_s:.0f}s")


def llmops(target: Target, *args: str) -> str:
    """The `llmops` command against the stack; its output."""
    env = {
        **os.environ,
        "LLMOPS_DATA_DIR": str(target.data_dir),
        "LLMOPS_GATEWAY_URL": target.gateway_url,
        "LLMOPS_API_KEY": target.api_key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "llmops_cli", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"llmops {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare(target: Target, client: GatewayClient, tag: str) -> tuple[str, str, Path]:
    """A tiny model and a versioned dataset of our own; (model name, dataset name, model dir)."""
    model, dataset = f"tiny-llama-{tag}", f"tiny-instructions-{tag}"
    model_dir = target.data_dir / "models" / "tiny" / model
    llmops(target, "models", "tiny", model, f"--output={model_dir}")
    data = target.data_dir / "datasets" / dataset
    shutil.copytree(DATASET_FILES, data)
    created = client.create_dataset({"name": dataset, "type": "sft_pair", "storageUri": str(data)})
    version = client.create_dataset_version(created["id"], "v1.0.0")
    eventually(
        lambda: client.dataset_version(created["id"], version["id"])["status"] == "Succeeded",
        timeout_s=300,
        what="the dataset version",
    )
    return model, dataset, model_dir


def _seconds(node: dict[str, Any]) -> float | None:
    """A pipeline node's wall time (the API shows camelCase ISO timestamps)."""
    if not node.get("startedAt") or not node.get("finishedAt"):
        return None
    started, finished = (datetime.fromisoformat(str(node[k])) for k in ("startedAt", "finishedAt"))
    return (finished - started).total_seconds()


def one_loop(
    target: Target, client: GatewayClient, model: str, dataset: str, index: int
) -> dict[str, Any]:
    """Submit the tiny job; time it to Succeeded and to its values file."""
    body = yaml.safe_load((EXAMPLES / "tiny-sft-job.yaml").read_text())
    spec = body["trainJobSpec"]
    spec["base_model_ref"] = model
    spec["dataset_ref"]["name"] = dataset
    spec["output"]["artifact_name"] = f"{model}-sft-{index}"
    started = time.monotonic()
    job = client.submit_training_job(body)
    final = eventually(
        lambda: (j := client.training_job(job["id"]))["status"] in ("Succeeded", "Failed") and j,
        timeout_s=1800,
        what="the job",
    )
    succeeded = time.monotonic() - started
    if final["status"] != "Succeeded":
        raise SystemExit(f"job {job['id']} failed: {final['reason']}")
    run_id = final["registeredModel"]["runId"]
    bare = target.data_dir / "github-sync" / "values.git"

    def committed() -> bool:
        shown = subprocess.run(
            ["git", "--git-dir", str(bare), "cat-file", "-e", f"main:{run_id}.yaml"],
            capture_output=True, check=False,
        )  # fmt: skip
        return shown.returncode == 0

    eventually(committed, timeout_s=120, what="the values file")
    values = time.monotonic() - started
    nodes = client.get(f"/llm-ops/v1/workflows/pipelines/train-{job['id']}")["nodes"]
    metrics = MlflowClient(target.mlflow_url).get_run(run_id).data.metrics
    return {
        "submit_to_succeeded_s": succeeded,
        "submit_to_values_s": values,
        "stages_s": {str(n["name"]): _seconds(n) for n in nodes},
        "trainer_tokens_per_s": metrics.get("train_tokens_per_second", 0.0),
        "train_loss": metrics.get("train_loss"),
        "eval_perplexity": metrics.get("eval_perplexity"),
    }


def raw_ceiling(model_dir: Path, *, batch: int, seq: int, steps: int) -> float:
    """Tokens/s of plain PyTorch LoRA steps on the tiny model (no trainer around them)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(3, model.config.vocab_size, (batch, seq))
    model.train()
    for _ in range(2):  # warm-up
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    started = time.perf_counter()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return batch * seq * steps / (time.perf_counter() - started)


def stage_floor() -> float:
    """Seconds to start Python and import what the train stage imports (every stage pays a
    share of it: they are separate processes, as pods are)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import torch, transformers, peft, trl, mlflow"], check=True
    )
    return time.perf_counter() - started


@contextmanager
def target_of(args: argparse.Namespace) -> Iterator[Target]:
    if args.gateway_url:
        yield Target(args.gateway_url, args.api_key, args.mlflow_url, Path(args.data_dir))
        return
    with (
        tempfile.TemporaryDirectory(prefix="llmops-bench-loop-") as tmp,
        EmbeddedRedis() as redis,
        running_stack(Path(tmp), redis.url) as stack,
    ):
        key = (stack.data_dir / "api-key").read_text().strip()
        yield Target(stack.gateway_url, key, stack.mlflow_url, stack.data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=3, help="tiny jobs, one after the other")
    parser.add_argument("--smoke", action="store_true", help="one loop, a short ceiling")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--gateway-url", help="a running stack's gateway (else start one)")
    parser.add_argument("--api-key", help="its API key")
    parser.add_argument("--mlflow-url", default="http://127.0.0.1:5000", help="its MLflow")
    parser.add_argument("--data-dir", default=".llmops", help="its data dir (values.git)")
    args = parser.parse_args()
    loops = 1 if args.smoke else args.loops

    job = yaml.safe_load((EXAMPLES / "tiny-sft-job.yaml").read_text())["trainJobSpec"]
    batch = int(job["hyperparams"]["batch_size"])
    with target_of(args) as target, GatewayClient(target.gateway_url, api_key=target.api_key) as c:
        model, dataset, model_dir = prepare(target, c, uuid.uuid4().hex[:6])
        results = [one_loop(target, c, model, dataset, i) for i in range(loops)]
        # the stack idles now; the model dir lives in its data dir
        ceiling = raw_ceiling(model_dir, batch=batch, seq=32, steps=5 if args.smoke else 50)
    floor = stage_floor()

    median = statistics.median
    figures: dict[str, Any] = {
        "loops": loops,
        "submit_to_succeeded_s": median(r["submit_to_succeeded_s"] for r in results),
        "submit_to_values_s": median(r["submit_to_values_s"] for r in results),
        "stages_s": {
            stage: median(r["stages_s"][stage] or 0.0 for r in results)
            for stage in results[0]["stages_s"]
        },
        "trainer_tokens_per_s": median(r["trainer_tokens_per_s"] for r in results),
        "raw_torch_tokens_per_s": ceiling,
        "stage_import_floor_s": floor,
        "runs": results,
        "machine": f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"# training loop benchmark: {figures['machine']}; median of {loops} loop(s)")
    print()
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| submit -> Succeeded | {figures['submit_to_succeeded_s']:.1f} s |")
    print(f"| submit -> values file in Git | {figures['submit_to_values_s']:.1f} s |")
    for stage, seconds in figures["stages_s"].items():
        print(f"| stage {stage} | {seconds:.0f} s |")
    print(f"| trainer tokens/s (train stage) | {figures['trainer_tokens_per_s']:,.0f} |")
    print(f"| raw ceiling: plain PyTorch LoRA steps, tokens/s | {ceiling:,.0f} |")
    print(f"| floor: start Python + import the train stage's libraries | {floor:.1f} s |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
