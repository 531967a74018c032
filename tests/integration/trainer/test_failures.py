"""Refusals (exit 2), failures (exit 1) and what they leave behind: a one-line error, no
partial output, and the job's MLflow run ended FAILED with the stage that failed."""

from __future__ import annotations

import json

import pytest
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from llmops_trainer import evaluate, prepare_data, register, train

from integration.trainer.conftest import NewJob
from integration.trainer.helpers import Job, run_chain

pytestmark = pytest.mark.integration

QLORA_REFUSAL = (
    "error: qlora needs a CUDA GPU and bitsandbytes (4-bit nf4): this machine has no CUDA "
    "device; train with method lora, or run on a GPU image"
)


def last_stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def assert_failed(client: MlflowClient, job: Job, stage: str) -> None:
    run = client.get_run(job.run_id)  # type: ignore[arg-type]
    assert run.info.status == "FAILED"
    assert run.data.tags["llmops.failed_stage"] == stage


def test_qlora_without_cuda_is_refused_before_any_work(
    new_job: NewJob, mlflow_client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT", method="qlora")
    code = train.main(job.train_args("--quantization=nf4"))
    assert code == 2
    assert last_stderr_line(capsys) == QLORA_REFUSAL
    assert not (job.root / "jobs").exists()  # no data read, no checkpoint, no model
    assert not (job.root / "cache").exists()
    assert_failed(mlflow_client, job, "train")
    assert mlflow_client.get_run(job.run_id).data.params == {}  # type: ignore[arg-type]


def test_a_bad_record_is_refused_naming_file_record_and_field(
    new_job: NewJob, mlflow_client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT")
    lines = (job.dataset / "data" / "train.jsonl").read_text().splitlines()
    lines[16] = json.dumps({"prompt": "a prompt without its response"})
    (job.dataset / "data" / "train.jsonl").write_text("\n".join(lines) + "\n")
    assert prepare_data.main(job.prepare_args()) == 2
    assert last_stderr_line(capsys) == (
        "error: data/train.jsonl record 17: field 'response' is missing"
    )
    assert not job.data.exists()
    assert_failed(mlflow_client, job, "prepare-data")


def test_records_of_another_dataset_type_are_refused(
    new_job: NewJob, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT", mlflow=False)
    args = [a for a in job.prepare_args() if not a.startswith("--dataset-type=")]
    assert prepare_data.main([*args, "--dataset-type=rag_qa"]) == 2
    assert last_stderr_line(capsys) == (
        "error: --dataset-type rag_qa cannot train SFT: it trains on sft_pair records"
    )


def test_a_failure_is_exit_1_with_a_summary_line_and_a_failed_run(
    new_job: NewJob,
    mlflow_client: MlflowClient,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = new_job("SFT")
    assert prepare_data.main(job.prepare_args()) == 0
    (job.data / "train.jsonl").write_text("{not json\n")
    assert train.main(job.train_args()) == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "train failed"]
    assert logged.exc_info is not None  # the traceback is in the log
    assert last_stderr_line(capsys).startswith("error: train failed: JSONDecodeError: ")
    assert not job.model.exists()
    assert_failed(mlflow_client, job, "train")


def test_a_missing_base_model_is_refused_naming_the_catalog_entry(
    new_job: NewJob, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT", mlflow=False)
    args = [a for a in job.prepare_args() if not a.startswith("--base-model-uri=")]
    assert prepare_data.main(args) == 2
    assert last_stderr_line(capsys) == (
        "error: base model 'tiny-base' has no location: give the catalog entry a storage_uri "
        "or import it with a snapshot"
    )


def test_bad_flags_are_refused_with_one_line(
    new_job: NewJob, mlflow_client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT")
    args = [a for a in job.train_args() if not a.startswith("--method=")]
    assert train.main([*args, "--method=dora"]) == 2
    line = last_stderr_line(capsys)
    assert line.startswith("error: Invalid value for '--method': ")
    assert "'dora' is not one of 'full', 'lora', 'qlora'" in line
    assert_failed(mlflow_client, job, "train")


def test_register_is_idempotent(
    new_job: NewJob, mlflow_client: MlflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    job = new_job("SFT", method="full")
    run_chain(job)
    first = job.model_version()
    mlflow_client.set_terminated(job.run_id, "RUNNING")  # type: ignore[arg-type]
    assert register.main(job.register_args()) == 0  # the step retried
    assert job.model_version() == first
    versions = mlflow_client.search_model_versions(f"name = '{job.artifact_name}'")
    assert [v.version for v in versions] == [first["version"]]
    assert mlflow_client.get_run(job.run_id).info.status == "FINISHED"  # type: ignore[arg-type]
    assert f"found model version {job.artifact_name}/{first['version']}" in caplog.text


def test_a_version_that_fails_to_register_is_deleted_and_the_stage_fails(
    new_job: NewJob, mlflow_client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that reports FAILED_REGISTRATION (an asynchronous model registry whose copy
    failed): the version must not stay for a deployment or github-sync to find."""
    job = new_job("SFT", method="full")
    assert prepare_data.main(job.prepare_args()) == 0
    assert train.main(job.train_args()) == 0
    assert evaluate.main(job.evaluate_args()) == 0
    real = MlflowClient.create_model_version

    def failing(self: MlflowClient, *args: object, **kwargs: object) -> ModelVersion:
        created = real(self, *args, **kwargs)  # type: ignore[arg-type]
        return ModelVersion(
            created.name, created.version, created.creation_timestamp,
            run_id=created.run_id, source=created.source,
            status="FAILED_REGISTRATION", status_message="the copy to the registry failed",
        )  # fmt: skip

    monkeypatch.setattr(MlflowClient, "create_model_version", failing)
    assert register.main(job.register_args()) == 1
    assert mlflow_client.search_model_versions(f"name = '{job.artifact_name}'") == []
    assert not (job.outputs / "model-version.json").exists()
    assert_failed(mlflow_client, job, "register")


def test_a_run_that_cannot_be_ended_does_not_fail_a_registered_model(
    new_job: NewJob, mlflow_client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = new_job("SFT", method="full")
    assert prepare_data.main(job.prepare_args()) == 0
    assert train.main(job.train_args()) == 0
    assert evaluate.main(job.evaluate_args()) == 0

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("MLflow went away")

    monkeypatch.setattr(MlflowClient, "set_terminated", down)
    assert register.main(job.register_args()) == 0
    version = job.model_version()["version"]
    assert mlflow_client.get_model_version(job.artifact_name, version).status == "READY"


def test_without_mlflow_every_stage_works_and_nothing_is_registered(
    new_job: NewJob, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("RAG_TUNING", mlflow=False)
    run_chain(job)
    assert job.model_version() == {
        "name": job.artifact_name,
        "version": None,
        "run_id": None,
        "source": None,
        "storage_uri": str(job.model),
    }


def test_mlflow_without_a_run_id_skips_logging_but_register_fails(
    new_job: NewJob,
    mlflow_client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = new_job("SFT")
    monkeypatch.delenv("MLFLOW_RUN_ID")
    assert prepare_data.main(job.prepare_args()) == 0
    assert "MLFLOW_TRACKING_URI is set but MLFLOW_RUN_ID is not" in caplog.text
    assert mlflow_client.get_run(job.run_id).data.params == {}  # type: ignore[arg-type]
    assert register.main(job.register_args()) == 2
    assert last_stderr_line(capsys) == (
        "error: register needs MLFLOW_RUN_ID (the job's run) when MLflow is configured"
    )


def test_evaluate_refuses_a_model_train_never_finished(
    new_job: NewJob, capsys: pytest.CaptureFixture[str]
) -> None:
    job = new_job("SFT", mlflow=False)
    assert prepare_data.main(job.prepare_args()) == 0
    job.model.mkdir(parents=True)
    (job.model / "config.json").write_text("{}")
    assert evaluate.main(job.evaluate_args()) == 2
    assert last_stderr_line(capsys) == (
        f"error: --model-uri {job.model} holds no trained model (llmops-model.json is "
        "missing): run train first"
    )
