"""Datasets, stage invocations and MLflow look-ups shared by the trainer's integration tests.

Stages run in process (``<stage>.main(argv)``): importing transformers, TRL and
sentence-transformers costs ~10 s per process here, paid once for the whole suite instead of
once per stage. The subprocess tests (resume after SIGKILL, torchrun) are the exception.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from llmops_trainer import evaluate, prepare_data, register, train

JOB_ID_TAG = "llmops.job_id"
TEST_PREFIX = "trainer-it"

DATASET_TYPE = {
    "PRETRAIN": "pretrain_corpus",
    "SFT": "sft_pair",
    "RAG_TUNING": "rag_qa",
    "RLHF": "rlhf_pair",
    "EMBEDDING": "embedding_pair",
}
OBJECTIVE = {
    "PRETRAIN": "causal-lm",
    "SFT": "sft",
    "RAG_TUNING": "rag-qa",
    "RLHF": "dpo",
    "EMBEDDING": "contrastive",
}
SUITE = {
    "PRETRAIN": "perplexity",
    "SFT": "generation",
    "RAG_TUNING": "rag-qa",
    "RLHF": "preference",
    "EMBEDDING": "retrieval",
}


def records(dataset_type: str, count: int) -> list[dict[str, str]]:
    """Short, varied records of a dataset type (the seed's shape: ~50 short records)."""
    animals = ["fox", "dog", "cat", "owl", "eel", "yak", "bee", "ant"]
    out = []
    for i in range(count):
        a, b = animals[i % len(animals)], animals[(i * 3 + 1) % len(animals)]
        if dataset_type == "pretrain_corpus":
            out.append({"text": f"Document {i}: the {a} jumps over the {b} {i} times."})
        elif dataset_type == "sft_pair":
            out.append({"prompt": f"What is {i} plus {i}?", "response": f"It is {2 * i}."})
        elif dataset_type == "rag_qa":
            out.append(
                {
                    "question": f"How many times does the {a} jump?",
                    "context": f"The {a} jumps {i} times over the {b}.",
                    "answer": f"{i} times.",
                }
            )
        elif dataset_type == "rlhf_pair":
            out.append(
                {
                    "prompt": f"Say something kind about the {a} number {i}.",
                    "chosen": f"The {a} is lovely.",
                    "rejected": f"I do not care about {b}s.",
                }
            )
        else:
            out.append(
                {
                    "query": f"where does the {a} number {i} live?",
                    "positive": f"The {a} number {i} lives in house {i}.",
                    "negative": f"The {b} eats {i} apples.",
                }
            )
    return out


def write_dataset(root: Path, dataset_type: str, count: int = 40) -> Path:
    """A dataset directory: most records in data/train.jsonl, a few in a JSON-array file."""
    rows = records(dataset_type, count)
    (root / "data").mkdir(parents=True, exist_ok=True)
    with (root / "data" / "train.jsonl").open("w") as out:
        for row in rows[: count - 5]:
            out.write(json.dumps(row) + "\n")
    (root / "extra.json").write_text(json.dumps(rows[count - 5 :]))
    (root / "NOTES.md").write_text("not a record file: ignored\n")
    return root


@dataclass
class Job:
    """One job's places, flags and MLflow run (``run_id`` None without MLflow)."""

    root: Path
    job_id: str
    job_type: str
    family: str
    base_model: Path
    dataset: Path
    run_id: str | None = None
    experiment_id: str | None = None
    method: str = "lora"
    save_format: str = "hf"
    artifact_name: str = field(default_factory=lambda: f"{TEST_PREFIX}-{uuid.uuid4().hex[:8]}")
    base_model_ref: str = "tiny-base"
    batch_size: int = 4
    num_epochs: int = 1
    max_seq_len: int = 128

    @property
    def data(self) -> Path:
        return self.root / "jobs" / self.job_id / "data"

    @property
    def model(self) -> Path:
        return self.root / "jobs" / self.job_id / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "jobs" / self.job_id / "checkpoints"

    @property
    def eval(self) -> Path:
        return self.root / "jobs" / self.job_id / "eval"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs" / self.job_id

    def common(self) -> list[str]:
        args = [f"--job-type={self.job_type}", f"--model-family={self.family}"]
        if self.job_type != "PRETRAIN":
            args.append(f"--base-model-ref={self.base_model_ref}")
        return [*args, f"--base-model-uri={self.base_model}"]

    def prepare_args(self, *extra: str) -> list[str]:
        return [
            *self.common(),
            "--dataset-name=ds",
            "--dataset-version=v1",
            f"--dataset-type={DATASET_TYPE[self.job_type]}",
            f"--dataset-uri={self.dataset}",
            f"--max-seq-len={self.max_seq_len}",
            f"--output-uri={self.data}",
            *extra,
        ]

    def train_args(self, *extra: str) -> list[str]:
        return [
            *self.common(),
            f"--method={self.method}",
            f"--objective={OBJECTIVE[self.job_type]}",
            f"--data-uri={self.data}",
            f"--output-uri={self.model}",
            "--lr=0.001",
            f"--batch-size={self.batch_size}",
            f"--num-epochs={self.num_epochs}",
            f"--max-seq-len={self.max_seq_len}",
            "--precision=bf16",
            f"--save-format={self.save_format}",
            f"--artifact-name={self.artifact_name}",
            *extra,
        ]

    def evaluate_args(self) -> list[str]:
        return [
            *self.common(),
            f"--suite={SUITE[self.job_type]}",
            f"--model-uri={self.model}",
            f"--data-uri={self.data}",
            f"--max-seq-len={self.max_seq_len}",
            f"--batch-size={self.batch_size}",
            f"--output-uri={self.eval}",
        ]

    def register_args(self) -> list[str]:
        return [
            *self.common(),
            f"--model-uri={self.model}",
            f"--eval-uri={self.eval}",
            f"--model-name={self.artifact_name}",
            f"--save-format={self.save_format}",
            "--dataset-name=ds",
            "--dataset-version=v1",
        ]

    def model_version(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outputs / "model-version.json").read_text())
        return data


def run_chain(job: Job) -> None:
    """prepare_data -> train -> evaluate -> register, in process, each must exit 0."""
    assert prepare_data.main(job.prepare_args()) == 0
    assert train.main(job.train_args()) == 0
    assert evaluate.main(job.evaluate_args()) == 0
    assert register.main(job.register_args()) == 0


def new_run(client: MlflowClient, job_id: str) -> tuple[str, str]:
    """What the tracking service does for a submitted job: an experiment and a run tagged with
    the job id (each test its own experiment, named with the suite's prefix)."""
    experiment_id = client.create_experiment(f"{TEST_PREFIX}-{uuid.uuid4().hex[:12]}")
    run = client.create_run(experiment_id, tags={JOB_ID_TAG: job_id})
    return experiment_id, run.info.run_id


def stage_env(job: Job, *, tracking_uri: str | None, artifacts: Path | None) -> dict[str, str]:
    """The environment the pipeline gives every stage of ``job``."""
    env = {
        "LLMOPS_JOB_ID": job.job_id,
        "LLMOPS_OUTPUTS_DIR": str(job.outputs),
        "LLMOPS_CACHE_DIR": str(job.root / "cache"),
        "MLFLOW_TRACKING_URI": tracking_uri or "",
        "MLFLOW_RUN_ID": job.run_id or "",
    }
    if artifacts is not None:
        env["MLFLOW_ARTIFACTS_DESTINATION"] = str(artifacts)
    return env


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` on top of ours, for stages run as processes (one torch thread each: the 2-core
    test machine is shared with the rest of the suite)."""
    return {
        **os.environ,
        **env,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a metric, in step order."""
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
