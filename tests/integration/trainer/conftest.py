"""Fixtures of the trainer's integration tests: tiny models, jobs, the job's MLflow run.

Tiny models are built once per session with llmops_trainer.tiny_model (random weights, local
tokenizer: no Hub download anywhere). MLflow is the session's real ``mlflow server``
(tests/integration/conftest.py); every job gets its own experiment and run, as the tracking
service would create them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from llmops_trainer.tiny_model import build
from llmops_trainer.vocab import ModelFamily

from integration.trainer.helpers import DATASET_TYPE, Job, new_run, stage_env, write_dataset
from support.mlflow_server import MlflowServer


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models train 4x faster on one thread than on two on this shared 2-core machine
    (the OpenMP threads of two processes fight over the cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny llama (causal jobs) and a tiny bert (EMBEDDING), built once."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "llama": build(ModelFamily.LLAMA, root / "llama", max_position_embeddings=512),
        "bert": build(ModelFamily.BERT, root / "bert", max_position_embeddings=512),
    }


@pytest.fixture
def mlflow_client(mlflow_server: MlflowServer) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.url)


NewJob = Callable[..., Job]


@pytest.fixture
def new_job(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    mlflow_server: MlflowServer,
    mlflow_client: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
) -> NewJob:
    """Make a job of a type (its dataset, base model, MLflow run) and export its stage
    environment; ``mlflow=False`` leaves MLflow unconfigured."""

    def make(job_type: str, *, mlflow: bool = True, records: int = 40, **fields: object) -> Job:
        family = "bert" if job_type == "EMBEDDING" else "llama"
        job_id = f"job-{uuid.uuid4().hex[:10]}"
        job = Job(
            root=tmp_path,
            job_id=job_id,
            job_type=job_type,
            family=family,
            base_model=tiny_models[family],
            dataset=write_dataset(tmp_path / "dataset", DATASET_TYPE[job_type], records),
            **fields,  # type: ignore[arg-type]
        )
        if mlflow:
            job.experiment_id, job.run_id = new_run(mlflow_client, job_id)
        env = stage_env(
            job,
            tracking_uri=mlflow_server.url if mlflow else None,
            artifacts=mlflow_server.root / "artifacts",
        )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return job

    return make
