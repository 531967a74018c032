"""Every job type through prepare_data -> train -> evaluate -> register on a CPU, with tiny
models, against a real MLflow server: what each stage logs, the model version it ends in, and
that the registered files load without PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from llmops_shared.events.payloads.training import RegisteredModel

from integration.trainer.conftest import NewJob
from integration.trainer.helpers import Job, history, run_chain
from support.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

CHAINS = [
    pytest.param("PRETRAIN", "full", "safetensors", id="PRETRAIN-full"),
    pytest.param("SFT", "lora", "hf", id="SFT-lora"),
    pytest.param("SFT", "full", "safetensors", id="SFT-full"),
    pytest.param("RAG_TUNING", "lora", "hf", id="RAG_TUNING-lora"),
    pytest.param("RLHF", "lora", "hf", id="RLHF-lora"),
    pytest.param("RLHF", "full", "hf", id="RLHF-full"),
    pytest.param("EMBEDDING", "full", "hf", id="EMBEDDING-full"),
    pytest.param("EMBEDDING", "lora", "safetensors", id="EMBEDDING-lora"),
]

EVAL_METRICS = {
    "PRETRAIN": ("eval_perplexity", "eval_loss"),
    "SFT": ("eval_perplexity", "eval_loss"),
    "RAG_TUNING": ("eval_perplexity", "eval_loss"),
    "RLHF": ("eval_preference_accuracy", "eval_reward_margin"),
    "EMBEDDING": ("eval_accuracy_at_1", "eval_mrr_at_10", "eval_ndcg_at_10"),
}


@pytest.mark.parametrize(("job_type", "method", "save_format"), CHAINS)
def test_chain(
    new_job: NewJob,
    mlflow_client: MlflowClient,
    mlflow_server: MlflowServer,
    job_type: str,
    method: str,
    save_format: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = new_job(job_type, method=method, save_format=save_format)
    run_chain(job)
    assert job.run_id is not None

    _assert_prepared(job, mlflow_client)
    _assert_training_logged(job, mlflow_client)
    _assert_evaluated(job, mlflow_client)
    _assert_registered(job, mlflow_client, mlflow_server, capsys)
    _assert_loads_without_peft(job, mlflow_server)


def _assert_prepared(job: Job, client: MlflowClient) -> None:
    prepared = json.loads((job.data / "prepared.json").read_text())
    assert prepared["records"] == {"total": 40, "train": 36, "eval": 4, "truncated": 0}
    assert prepared["dataset"]["pinned"] is False
    assert prepared["dataset"]["files"] == 2  # NOTES.md ignored
    run = client.get_run(job.run_id)  # type: ignore[arg-type]
    assert run.data.params["data.train_records"] == "36"
    assert run.data.params["data.eval_records"] == "4"
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "ds"
    assert dataset_input.dataset.digest == prepared["dataset"]["digest"]
    assert json.loads(dataset_input.dataset.source) == {"uri": str(job.dataset)}
    tags = {t.key: t.value for t in dataset_input.tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags["llmops.dataset_version"] == "v1"


def _assert_training_logged(job: Job, client: MlflowClient) -> None:
    assert job.run_id is not None
    steps = 9  # 36 train rows / batch 4, one epoch
    for key in ("loss", "learning_rate", "tokens_per_second"):
        logged = history(client, job.run_id, key)
        assert [step for step, _ in logged] == list(range(1, steps + 1)), key
    assert all(value > 0 for _, value in history(client, job.run_id, "tokens_per_second"))
    assert history(client, job.run_id, "grad_norm")
    metrics = client.get_run(job.run_id).data.metrics
    assert metrics["train_global_step"] == steps
    assert metrics["train_total_tokens"] > 0
    assert metrics["train_tokens_per_second"] > 0
    assert metrics["train_runtime"] > 0
    params = client.get_run(job.run_id).data.params
    assert params["trainer.method"] == job.method
    assert params["trainer.precision_requested"] == "bf16"
    assert params["trainer.precision"] == "fp32"  # no CUDA here
    assert params["trainer.lr"] == "0.001"
    marker = json.loads((job.model / "llmops-model.json").read_text())
    assert marker["global_step"] == steps
    assert marker["method"] == job.method
    assert (job.model / "adapter" / "adapter_config.json").exists() == (job.method == "lora")
    saved = sorted(p.name for p in job.checkpoints.iterdir() if p.is_dir())
    # a short run: the default interval (>= 50 steps) saves none mid-run, only the last step's
    assert saved == [f"checkpoint-{steps}"]


def _assert_evaluated(job: Job, client: MlflowClient) -> None:
    report = json.loads((job.eval / "metrics.json").read_text())
    assert report["metrics"]["eval_records"] == 4
    logged = client.get_run(job.run_id).data.metrics  # type: ignore[arg-type]
    for key in EVAL_METRICS[job.job_type]:
        assert key in report["metrics"], key
        assert logged[key] == pytest.approx(report["metrics"][key]), key
    if "eval_perplexity" in report["metrics"]:
        assert report["metrics"]["eval_perplexity"] > 1
    if "eval_preference_accuracy" in report["metrics"]:
        assert 0 <= report["metrics"]["eval_preference_accuracy"] <= 1


def _assert_registered(
    job: Job,
    client: MlflowClient,
    server: MlflowServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert job.run_id is not None
    record = job.model_version()
    RegisteredModel.model_validate(record)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == record
    version = client.get_model_version(job.artifact_name, record["version"])
    run = client.get_run(job.run_id)
    assert record["run_id"] == job.run_id == version.run_id
    assert record["source"] == version.source == f"{run.info.artifact_uri}/model"
    expected_tags = {
        "llmops.job_id": job.job_id,
        "llmops.dataset": "ds@v1",
        "llmops.job_type": job.job_type,
        "llmops.save_format": job.save_format,
    }
    if job.job_type != "PRETRAIN":  # PRETRAIN has no base model, only an init directory
        expected_tags["llmops.base_model"] = "tiny-base"
    assert version.tags == expected_tags
    assert run.info.status == "FINISHED"
    assert run.data.tags["llmops.model_version"] == f"{job.artifact_name}/{record['version']}"
    artifacts = {a.path for a in client.list_artifacts(job.run_id, "model")}
    assert {"model/config.json", "model/llmops-model.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(job.run_id, "eval")} == {"eval/metrics.json"}
    # mlflow-artifacts:/<experiment>/<run>/artifacts/model -> the server's destination
    expected = server.root / "artifacts" / job.experiment_id / job.run_id / "artifacts" / "model"  # type: ignore[operator]
    assert record["storage_uri"] == str(expected)
    assert (expected / "config.json").is_file()


def _assert_loads_without_peft(job: Job, server: MlflowServer) -> None:
    location = Path(job.model_version()["storage_uri"])
    if job.job_type == "EMBEDDING":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(location), device="cpu")
        assert model.encode(["hello"]).shape == (1, 64)
        return
    from transformers import AutoModelForCausalLM

    files = {p.name for p in location.iterdir()}
    assert "model.safetensors" in files
    assert "adapter_config.json" not in files  # merged: no PEFT needed to load
    model = AutoModelForCausalLM.from_pretrained(location)
    assert not any("lora" in name for name, _ in model.named_parameters())
