"""The whole chain with everything on S3 (moto's server: the real s3fs client over HTTP): base
model downloaded and cached, dataset read, data/model/eval published with their markers,
checkpoints mirrored up as they are saved and down when a retried train starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from llmops_trainer import evaluate, prepare_data, register, storage, train

from integration.trainer.conftest import NewJob
from support.s3_server import S3Server

pytestmark = pytest.mark.integration

BUCKET = "llmops-trainer"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


def upload(local: Path, uri: str) -> str:
    storage.upload_dir(local, uri)
    return uri


def test_the_chain_on_s3(
    s3: S3Server,
    new_job: NewJob,
    mlflow_client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region)
    job = new_job("SFT")
    root = f"s3://{BUCKET}/{job.job_id}"
    local_jobs = str(job.root / "jobs")
    base = upload(job.base_model, f"{root}/models/tiny-llama")
    dataset = upload(job.dataset, f"{root}/datasets/sft")

    def on_s3(args: list[str]) -> list[str]:
        return [
            a.replace(local_jobs, f"{root}/jobs")
            .replace(str(job.base_model), base)
            .replace(str(job.dataset), dataset)
            for a in args
        ]

    assert prepare_data.main(on_s3(job.prepare_args())) == 0
    assert train.main(on_s3(job.train_args("--checkpoint-steps=1"))) == 0
    assert evaluate.main(on_s3(job.evaluate_args())) == 0
    assert register.main(on_s3(job.register_args())) == 0

    keys = set(s3.keys(BUCKET, f"{job.job_id}/jobs/{job.job_id}/"))
    prefix = f"{job.job_id}/jobs/{job.job_id}"
    assert {f"{prefix}/data/prepared.json", f"{prefix}/data/train.jsonl"} <= keys
    assert {f"{prefix}/model/llmops-model.json", f"{prefix}/model/model.safetensors"} <= keys
    assert f"{prefix}/model/adapter/adapter_config.json" in keys
    assert f"{prefix}/eval/metrics.json" in keys
    checkpoints = {k.split("/")[4] for k in keys if k.startswith(f"{prefix}/checkpoints/")}
    assert checkpoints == {"checkpoint-8", "checkpoint-9"}  # mirrored, rotated like local
    assert f"{prefix}/checkpoints/checkpoint-9/trainer_state.json" in keys
    record = job.model_version()
    artifacts = {a.path for a in mlflow_client.list_artifacts(record["run_id"], "model")}
    assert "model/model.safetensors" in artifacts
    assert (job.root / "cache" / "models").is_dir()  # the base model was downloaded once

    # a retried train on another machine (empty local cache) pulls the newest checkpoint
    monkeypatch.setenv("LLMOPS_CACHE_DIR", str(job.root / "other-cache"))
    caplog.clear()
    assert train.main(on_s3(job.train_args("--checkpoint-steps=1"))) == 0
    assert "downloading checkpoint 9 from" in caplog.text
    assert "resuming from checkpoint" in caplog.text
    marker = json.loads(storage.read_bytes(f"{root}/jobs/{job.job_id}/model/llmops-model.json"))
    assert marker["resumed_from_step"] == 9
    assert marker["global_step"] == 9
