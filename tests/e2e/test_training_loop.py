"""End to end, the loop: a dataset version trains a model that is registered, synced to Git as
Helm values and deployed, on `llmops up` with its defaults (the local workflow backend).

dataset version (sft_pair JSONL, DVC) -> SFT LoRA job on a tiny Llama (`llmops models tiny`)
-> the stages run as processes with the real trainer -> job Succeeded -> the MLflow run has
per-step loss, eval perplexity and the dataset input -> a model version exists -> github-sync
commits `<run_id>.yaml` -> an endpoint whose DeploymentSpec names the trained artifact renders an
InferenceService whose storageUri is that artifact. The README's quickstart walks this loop.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from support.kserve_crd import schema_errors
from support.stack import RunningStack, eventually, local_stack

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples"
ROOT = Path(__file__).parents[2]
DATASET = "tiny-instructions"


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(redis_url, tmp_path_factory.mktemp("loop")) as running:
        yield running


def llmops(stack: RunningStack, *args: str, timeout_s: float = 120) -> str:
    """The `llmops` command against the stack, as a user runs it; its output."""
    env = {
        **os.environ,
        "LLMOPS_DATA_DIR": str(stack.data_dir),
        "LLMOPS_GATEWAY_URL": stack.gateway_url,
        "LLMOPS_API_KEY": stack.api_key,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "llmops_cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"llmops {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def trained(stack: RunningStack) -> dict[str, Any]:
    """The quickstart's loop up to a Succeeded job: the job as the gateway shows it."""
    out = llmops(stack, "models", "tiny", "tiny-llama")
    assert "random weights, for smoke tests only" in out
    data = stack.data_dir / "datasets" / DATASET
    shutil.copytree(EXAMPLES / "data" / DATASET, data)
    with stack.client() as client:
        dataset = client.create_dataset(
            {"name": DATASET, "type": "sft_pair", "storageUri": str(data)}
        )
        version = client.create_dataset_version(dataset["id"], "v1.0.0")
        eventually(
            lambda: client.dataset_version(dataset["id"], version["id"])["status"] == "Succeeded",
            timeout_s=120,
            what="the dataset version",
        )
        (data / "train.jsonl").write_text('{"prompt": "changed after the version"}\n')  # pinned
        body = yaml.safe_load((EXAMPLES / "tiny-sft-job.yaml").read_text())
        job = client.submit_training_job(body)
        final = eventually(
            lambda: (
                (j := client.training_job(job["id"]))["status"] in ("Succeeded", "Failed") and j
            ),
            timeout_s=600,
            what="the job to finish",
        )
    assert final["status"] == "Succeeded", f"{final['reason']}\n{stack.log_text()[-6000:]}"
    return final


def test_the_job_trained_on_the_pinned_version_and_logged_to_its_run(
    stack: RunningStack, trained: dict[str, Any]
) -> None:
    with stack.client() as client:
        run = client.experiment_run(trained["id"])
    assert run is not None
    assert run["status"] == "Succeeded"  # the run record followed its job to the end
    mlflow = MlflowClient(stack.mlflow_url)
    losses = mlflow.get_metric_history(run["runId"], "loss")
    assert len(losses) >= 2  # per step
    assert sorted(m.step for m in losses) == [m.step for m in losses]
    assert mlflow.get_metric_history(run["runId"], "tokens_per_second")
    data = mlflow.get_run(run["runId"])
    assert data.data.metrics["eval_perplexity"] > 1
    inputs = data.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == [DATASET]
    # the version's content (36 records), not the file overwritten after it was recorded
    assert data.data.params.get("data.train_records", "0") != "0"
    assert (
        int(data.data.params["data.train_records"]) + int(data.data.params["data.eval_records"])
        == 36
    )
    assert data.info.status == "FINISHED"
    pipeline = trained["pipeline"]
    assert pipeline["status"] == "Succeeded"
    assert pipeline["progress"] == {"done": 4, "total": 4}
    log = stack.log_text()
    assert f"train-{trained['id']}/train |" in log  # the stage's output in the stack's log


def test_a_model_version_exists_and_becomes_helm_values_in_git(
    stack: RunningStack, trained: dict[str, Any]
) -> None:
    model = trained["registeredModel"]
    assert model["name"] == "tiny-llama-sft"
    version = MlflowClient(stack.mlflow_url).get_model_version(model["name"], model["version"])
    assert version.run_id == model["runId"]
    assert version.tags["llmops.job_id"] == trained["id"]
    assert version.tags["llmops.dataset"] == f"{DATASET}@v1.0.0"
    assert version.tags["llmops.base_model"] == "tiny-llama"
    stored = Path(model["storageUri"])
    assert (stored / "config.json").is_file()  # a model server can read it there
    bare = stack.data_dir / "github-sync" / "values.git"

    def committed() -> dict[str, Any] | None:
        shown = subprocess.run(
            ["git", "--git-dir", str(bare), "show", f"main:{model['runId']}.yaml"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return yaml.safe_load(shown.stdout) if shown.returncode == 0 else None

    values = eventually(committed, timeout_s=60, what="the values file in git")
    assert values["global"]["runid"] == model["runId"]
    assert (values["global"]["modelName"], str(values["global"]["modelVersion"])) == (
        model["name"],
        model["version"],
    )


def test_an_endpoint_of_the_trained_artifact_serves_exactly_it(
    stack: RunningStack, trained: dict[str, Any]
) -> None:
    spec = copy.deepcopy(SEED_DEPLOYMENT_SPEC)
    spec.update(model_ref="tiny-llama-sft", use_gpu=False)
    spec["runtime"] = {**spec["runtime"], "max_input_tokens": 1024, "max_output_tokens": 256}
    with stack.client() as client:
        models = client.get("/llm-ops/v1/catalog/models?limit=500")["items"]
        model_id = next(m["id"] for m in models if m["name"] == "tiny-llama")
        endpoint = client.create_endpoint(
            {"modelId": model_id, "route": "/tiny", "environment": "dev", "deploymentSpec": spec}
        )
        assert endpoint["storageUri"] == trained["registeredModel"]["storageUri"]
        deployment = eventually(
            lambda: (d := client.deployment(endpoint["id"])) and d["status"] == "Ready" and d,
            timeout_s=30,
            what="the InferenceService written",
        )
    manifest = deployment["manifest"]
    assert schema_errors(manifest) == []
    assert (
        manifest["spec"]["predictor"]["model"]["storageUri"]
        == trained["registeredModel"]["storageUri"]
    )


def test_the_lineage_joins_the_loop_from_the_data_to_the_endpoint(
    stack: RunningStack, trained: dict[str, Any]
) -> None:
    """The real loop's chain in one call each way: the job's pinned dataset version, its
    pipeline and run, the model version github-sync wrote to Git, and an endpoint serving it."""
    spec = copy.deepcopy(SEED_DEPLOYMENT_SPEC)
    spec.update(model_ref="tiny-llama-sft", use_gpu=False)
    spec["runtime"] = {**spec["runtime"], "max_input_tokens": 1024, "max_output_tokens": 256}
    model = trained["registeredModel"]
    with stack.client() as client:
        models = client.get("/llm-ops/v1/catalog/models?limit=500")["items"]
        model_id = next(m["id"] for m in models if m["name"] == "tiny-llama")
        body = {"modelId": model_id, "route": "/tiny-lineage", "environment": "dev"}
        endpoint = client.create_endpoint({**body, "deploymentSpec": spec})

        def synced() -> dict[str, Any] | None:
            graph = client.lineage("training-job", trained["id"])
            kinds = {node["kind"] for node in graph["nodes"]}
            return graph if "values-commit" in kinds else None

        around_job = eventually(synced, timeout_s=60, what="github-sync's report folded")
        kinds = {node["kind"] for node in around_job["nodes"]}
        assert {"dataset-version", "pipeline", "experiment-run", "model-version"} <= kinds
        [data] = [n for n in around_job["nodes"] if n["kind"] == "dataset-version"]
        assert data["label"] == f"{DATASET}@v1.0.0"
        down = client.lineage("dataset-version", data["id"], direction="down")
    keys = {node["key"] for node in down["nodes"]}
    assert f"endpoint:{endpoint['id']}" in keys
    assert f"model-version:{model['name']}/{model['version']}" in keys
    [run] = [n for n in down["nodes"] if n["kind"] == "experiment-run"]
    assert run["id"] == model["runId"]
    assert run["links"]["mlflow"].endswith(model["runId"])


def test_the_loop_benchmark_runs_against_the_stack(stack: RunningStack, tmp_path: Path) -> None:
    """A smoke run of bench/training_loop.py (so it cannot rot): one tiny loop, its table and
    its JSON figures; the timings themselves are not asserted."""
    out = tmp_path / "loop.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_loop.py"), "--smoke",
         "--gateway-url", stack.gateway_url, "--api-key", stack.api_key,
         "--mlflow-url", stack.mlflow_url, "--data-dir", str(stack.data_dir),
         "--json", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| submit -> Succeeded" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["loops"] == 1
    assert figures["submit_to_values_s"] >= figures["submit_to_succeeded_s"] > 0
    assert figures["trainer_tokens_per_s"] > 0
    assert figures["raw_torch_tokens_per_s"] > 0
