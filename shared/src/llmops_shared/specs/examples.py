"""The integration quickstart's own example specs (its training-job and serving-endpoint
requests), the one copy in the repo.

Docs, generated schema examples, tests, benchmarks and the local stack's ``examples/`` all start
from these; treat them as read-only (copy before changing).
"""

from __future__ import annotations

from typing import Any, Final

SEED_TRAIN_JOB_SPEC: Final[dict[str, Any]] = {
    "job_type": "SFT",
    "model_family": "llama",
    "base_model_ref": "llama-3-8b-pretrain-v1",
    "dataset_ref": {
        "name": "enterprise-instruction",
        "version": "v1",
        "type": "sft_pair",
        "storage_uri": "s3://llm-datasets/enterprise-instruction/v1",
    },
    "hyperparams": {
        "lr": 0.0001,
        "batch_size": 4,
        "num_epochs": 3,
        "max_seq_len": 4096,
        "precision": "bf16",
    },
    "method": "lora",
    "resources": {"gpus": 2, "gpu_type": "A100", "nodes": 1},
    "output": {"artifact_name": "llama-3-8b-sft-v1", "save_format": "hf"},
    "use_gpu": True,
}
"""The TrainJobSpec of the integration quickstart's training-job example."""

SEED_DEPLOYMENT_SPEC: Final[dict[str, Any]] = {
    "model_ref": "llama-3-8b-sft-v1",
    "model_family": "llama",
    "job_type": "SFT",
    "serve_target": "GENERATION",
    "resources": {"gpus": 2, "gpu_memory_gb": 80},
    "runtime": {
        "max_concurrent_requests": 256,
        "max_input_tokens": 4096,
        "max_output_tokens": 1024,
    },
    "rollout": {"strategy": "canary", "traffic_split": {"old": 90, "new": 10}},
    "use_gpu": True,
}
"""The DeploymentSpec of the integration quickstart's serving-endpoint example."""
