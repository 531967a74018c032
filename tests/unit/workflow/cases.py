"""The rendered cases with golden files: one pipeline per job type / method / device situation.

Every case starts from the seed's TrainJobSpec (quickstart 5.1) with fixed ids, so the renders
are byte-for-byte reproducible.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from llmops_shared.events import DatasetVersionPin
from llmops_shared.specs import TrainJobSpec
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_workflow.render.jobs import render_jobs
from llmops_workflow.render.request import RenderOptions, TrainRequest
from llmops_workflow.render.workflow import render_workflow

JOB_ID = "3f9a2c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
NAMESPACE = "llm-ops-dev"


def seed_spec(**changes: Any) -> TrainJobSpec:
    """The seed's TrainJobSpec with top-level fields replaced (nested dicts are merged)."""
    data = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return TrainJobSpec.model_validate(data)


def request(spec: TrainJobSpec | None = None, **changes: Any) -> TrainRequest:
    """A fixed request in ``llm-ops-dev``."""
    values: dict[str, Any] = {
        "job_id": JOB_ID,
        "namespace": NAMESPACE,
        "spec": spec or seed_spec(),
        "model_id": "7d1c2b3a-0000-4000-8000-000000000001",
        "dataset_id": "7d1c2b3a-0000-4000-8000-000000000002",
        "correlation_id": "req-golden",
        "base_model_uri": "s3://llm-models/catalog/llama-3-8b-pretrain-v1",
        "dataset_version": PIN,
    }
    values.update(changes)
    return TrainRequest(**values)


PIN = DatasetVersionPin(
    version_id="7d1c2b3a-0000-4000-8000-000000000003",
    dataset_id="7d1c2b3a-0000-4000-8000-000000000002",
    backend="dvc",
    tag="v1.0.0",
    digest="6fc0d3b2a9e14f7c8b5a2d1e0f9c8b7a.dir",
    remote_uri="s3://llm-dvc-remote/datasets",
    revision="1f2e3d4c5b6a79881726354453627180a9b8c7d6",
)
"""The recorded dataset version the gateway pins a job to."""

GPU = RenderOptions(pretrain_init_uri="s3://llm-models/init/{model_family}")
NO_GPU = RenderOptions(gpu_available=False)

SPECS: dict[str, TrainJobSpec] = {
    "pretrain_full": seed_spec(
        job_type="PRETRAIN",
        base_model_ref=None,
        method="full",
        dataset_ref={
            "name": "web-corpus",
            "type": "pretrain_corpus",
            "storage_uri": "s3://llm-datasets/web-corpus/v1",
        },
        resources={"gpus": 8, "gpu_type": "H100", "nodes": 1},
        output={"artifact_name": "llama-3-8b-pretrain-v2", "save_format": "safetensors"},
    ),
    "sft_lora": seed_spec(),
    "sft_qlora": seed_spec(method="qlora", resources={"gpus": 1}),
    "sft_full": seed_spec(method="full", resources={"gpus": 8}),
    "rag_tuning_lora": seed_spec(
        job_type="RAG_TUNING",
        dataset_ref={
            "name": "support-qa",
            "type": "rag_qa",
            "storage_uri": "s3://llm-datasets/support-qa/v1",
        },
        output={"artifact_name": "llama-3-8b-rag-v1", "save_format": "hf"},
    ),
    "rlhf_lora": seed_spec(
        job_type="RLHF",
        dataset_ref={
            "name": "preferences",
            "type": "rlhf_pair",
            "storage_uri": "s3://llm-datasets/preferences/v1",
        },
        output={"artifact_name": "llama-3-8b-rlhf-v1", "save_format": "hf"},
    ),
    "embedding_full": seed_spec(
        job_type="EMBEDDING",
        model_family="bert",
        base_model_ref="bert-base-v1",
        method="full",
        dataset_ref={
            "name": "search-pairs",
            "type": "embedding_pair",
            "storage_uri": "s3://llm-datasets/search-pairs/v1",
        },
        hyperparams={"max_seq_len": 512, "batch_size": 64, "precision": "fp16"},
        resources={"gpus": 1, "gpu_type": None},
        output={"artifact_name": "bert-embed-v1", "save_format": "safetensors"},
    ),
    "multi_node": seed_spec(method="full", resources={"gpus": 8, "nodes": 2}),
}
"""Specs of the cases (also rendered with the built-in Jobs where they fit one node)."""

CASES: dict[str, Callable[[], dict[str, Any]]] = {
    **{name: (lambda s=spec: render_workflow(request(s), GPU)) for name, spec in SPECS.items()},
    "cpu_fallback": lambda: render_workflow(request(), NO_GPU),
    "cpu_fallback_qlora": lambda: render_workflow(request(SPECS["sft_qlora"]), NO_GPU),
    "cpu_use_gpu_false": lambda: render_workflow(
        request(seed_spec(use_gpu=False, resources={"gpus": 0, "gpu_type": None})), GPU
    ),
    "jobs_sft_lora": lambda: render_jobs(request(), GPU),
    "unpinned_dataset": lambda: render_workflow(
        request(base_model_uri=None, dataset_version=None), NO_GPU
    ),
}
"""Golden file name (without ``.yaml``) -> the render it holds."""

WORKFLOW_CASES = [name for name in CASES if not name.startswith("jobs_")]
JOB_CASES = [name for name in CASES if name.startswith("jobs_")]
