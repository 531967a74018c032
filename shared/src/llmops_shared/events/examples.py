"""One valid, deterministic example of every event type.

They go into the generated documents (so other publishers see a real event next to each schema)
and into the tests of this package and of the streams runtime. The specs are the integration
quickstart's own examples (its training-job and serving-endpoint requests). Built on call, never
at import.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from llmops_shared.events.base import EventPayload
from llmops_shared.events.codec import new_event
from llmops_shared.events.envelope import Envelope
from llmops_shared.events.payloads.status import STATUS_PAYLOADS, StatusEntity
from llmops_shared.events.registry import EVENT_TYPES
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC, SEED_TRAIN_JOB_SPEC

EXAMPLE_TIME: Final = datetime(2025, 1, 27, 12, 0, 0, tzinfo=UTC)
EXAMPLE_SOURCE: Final = "gateway"
EXAMPLE_CORRELATION_ID: Final = "req-7f3c2a91"
EXAMPLE_TRACEPARENT: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

JOB_ID: Final = "0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"
ENDPOINT_ID: Final = "5d0e8f2a-1c4b-4f7e-8a3d-9b2c6e1f0a47"
MODEL_ID: Final = "a3c1e5f7-2b4d-4e6f-8a0c-1e3f5a7b9c2d"
DATASET_ID: Final = "c7e9a1b3-5d7f-4a2c-9e4b-6d8f0a2c4e6a"
DATASET_VERSION_ID: Final = "e2f4a6c8-0b1d-4c3e-8f5a-7b9d1e3f5a70"
RESTORE_ID: Final = "f1a3c5e7-9b2d-4f6a-8c0e-2a4c6e8a0b1d"

_ENDPOINT: Final[dict[str, Any]] = {
    "endpoint_id": ENDPOINT_ID,
    "name": "llama-3-8b-sft",
    "environment": "dev",
}

_STATUS_EXAMPLES: Final[dict[StatusEntity, dict[str, Any]]] = {
    StatusEntity.JOB: {
        "entity_id": JOB_ID,
        "phase": "Running",
        "reporter": "workflow",
    },
    StatusEntity.DEPLOYMENT: {
        "entity_id": ENDPOINT_ID,
        "phase": "Ready",
        "details": {
            "name": "llama-3-8b-sft",
            "namespace": "llm-ops-dev",
            "backend": "kserve",
            "url": "http://llama-3-8b-sft.llm-ops-dev.example.com",
            "traffic": [
                {"revision": "llama-3-8b-sft-predictor-00002", "percent": 10, "tag": "candidate"},
                {"revision": "llama-3-8b-sft-predictor-00001", "percent": 90},
            ],
            "rollout": {"strategy": "canary", "canary_percent": 10},
        },
        "reporter": "serving",
    },
    StatusEntity.PIPELINE: {
        "entity_id": f"train-{JOB_ID}",
        "phase": "Succeeded",
        "details": {
            "job_id": JOB_ID,
            "workflow_name": f"train-{JOB_ID}",
            "namespace": "llm-ops-dev",
            "backend": "argo",
            "progress": {"done": 4, "total": 4},
            "registered_model": {
                "name": "llama-3-8b-sft",
                "version": "3",
                "run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "storage_uri": "s3://mlflow-artifacts/1/0f1e2d3c4b5a69788796a5b4c3d2e1f0/"
                "artifacts/model",
            },
        },
        "reporter": "workflow",
    },
    StatusEntity.MODEL: {
        "entity_id": MODEL_ID,
        "phase": "Failed",
        "reason": "repository microsoft/DialoGPT-medium not found",
        "reporter": "registry",
    },
    StatusEntity.DATASET_VERSION: {
        "entity_id": DATASET_VERSION_ID,
        "phase": "Succeeded",
        "details": {
            "version": {
                "backend": "dvc",
                "digest": "3f1c9a0e8b7d6c5b4a3928171605f4e3.dir",
                "file_count": 2,
                "total_bytes": 3072,
                "revision": "9d8c7b6a5f4e3d2c1b0a99887766554433221100",
                "tag": f"{DATASET_ID}/v1.0.0",
                "remote_uri": "s3://datasets-dvc",
                "parent_version_id": None,
                "files": [
                    ["train.jsonl", "0cc175b9c0f1b6a831c399e269772661", 2048],
                    ["valid.jsonl", "92eb5ffee6ae2fec3ad71c777531578f", 1024],
                ],
            }
        },
        "reporter": "versioning",
    },
    StatusEntity.DATASET_RESTORE: {
        "entity_id": RESTORE_ID,
        "phase": "Succeeded",
        "details": {
            "restore": {
                "version_id": DATASET_VERSION_ID,
                "target_uri": "s3://llm-datasets/restored/enterprise-instruction-v1",
                "files_done": 2,
                "files_total": 2,
                "bytes_done": 3072,
                "bytes_total": 3072,
            }
        },
        "reporter": "versioning",
    },
    StatusEntity.MODEL_VERSION: {
        "entity_id": "llama-3-8b-sft/3",
        "phase": "Succeeded",
        "details": {
            "path": "deploy/0f1e2d3c4b5a69788796a5b4c3d2e1f0.yaml",
            "action": "created",
            "commit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "backend": "github",
        },
        "reporter": "github-sync",
    },
    StatusEntity.EXPERIMENT_RUN: {
        "entity_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "phase": "Running",
        "details": {
            "job_id": JOB_ID,
            "experiment_id": "1",
            "experiment_name": "llm-ops-dev",
            "backend": "mlflow",
        },
        "reporter": "tracking",
    },
}


def example_data() -> dict[str, dict[str, Any]]:
    """Event type -> example ``data`` as JSON-ready dicts, valid against the payload models."""
    data: dict[str, dict[str, Any]] = {
        "llmops.training.job.submitted.v1": {
            "job_id": JOB_ID,
            "model_id": MODEL_ID,
            "dataset_id": DATASET_ID,
            "spec": SEED_TRAIN_JOB_SPEC,
        },
        "llmops.training.job.cancelled.v1": {"job_id": JOB_ID, "reason": "cancelled by user"},
        "llmops.training.experiment_migration.requested.v1": {
            "job_id": JOB_ID,
            "spec": SEED_TRAIN_JOB_SPEC,
            "target": "mlflow",
            "run_status": "FINISHED",
            "params": {"lr": "0.0002", "batch_size": "4"},
            "tags": {"llmops.job_id": JOB_ID},
        },
        "llmops.serving.deployment.requested.v1": {
            **_ENDPOINT,
            "route": "/test-model",
            "model_id": MODEL_ID,
            "spec": SEED_DEPLOYMENT_SPEC,
            "storage_uri": "s3://mlflow-artifacts/1/0f1e2d3c4b5a69788796a5b4c3d2e1f0/artifacts/model",
            "mlflow_run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        },
        "llmops.serving.deployment.promoted.v1": dict(_ENDPOINT),
        "llmops.serving.deployment.rolled_back.v1": {
            **_ENDPOINT,
            "reason": "p99 latency above objective",
        },
        "llmops.serving.deployment.deleted.v1": dict(_ENDPOINT),
        "llmops.serving.deployment_migration.requested.v1": {
            **_ENDPOINT,
            "route": "/test-model",
            "model_id": MODEL_ID,
            "spec": SEED_DEPLOYMENT_SPEC,
            "storage_uri": "s3://llm-models/test-model",
            "mlflow_run_id": None,
            "target": "kserve",
        },
        "llmops.config.integration.changed.v1": {
            "environment": "prod",
            "area": "serving_framework",
            "enabled": False,
            "system": "kserve",
            "revision": 3,
            "changed_by": "rollback integrations",
            "reason": "KServe control plane upgrade",
        },
        "llmops.catalog.model_import.requested.v1": {
            "model_id": MODEL_ID,
            "registry_type": "huggingface",
            "registry_model_id": "microsoft/DialoGPT-medium",
            "revision": "main",
            "download": False,
        },
        "llmops.catalog.model_update_check.requested.v1": {
            "model_id": MODEL_ID,
            "registry_type": "huggingface",
            "registry_model_id": "microsoft/DialoGPT-medium",
            "revision": "main",
            "pinned_revision": "7b40bb0f92c45fefa957d088000d8648e5c7fa33",
        },
        "llmops.datasets.dataset_restore.requested.v1": {
            "restore_id": RESTORE_ID,
            "dataset_id": DATASET_ID,
            "version_id": DATASET_VERSION_ID,
            "version_tag": "v1.0.0",
            "target_uri": "s3://llm-datasets/restored/enterprise-instruction-v1",
        },
        "llmops.datasets.dataset_version.requested.v1": {
            "dataset_id": DATASET_ID,
            "version_id": DATASET_VERSION_ID,
            "version_tag": "v1.0.0",
            "dataset_type": "sft_pair",
            "storage_uri": "s3://llm-datasets/enterprise-instruction/v1",
            "parent_version_id": None,
        },
        "llmops.models.model_version.registered.v1": {
            "model_name": "llama-3-8b-sft",
            "version": "3",
            "run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "experiment_id": "1",
            "source": "mlflow-artifacts:/1/0f1e2d3c4b5a69788796a5b4c3d2e1f0/artifacts/model",
            "created_at": "2025-01-27T11:58:30Z",
            "aliases": ["champion"],
            "tags": {"job_id": JOB_ID},
        },
        "llmops.models.model_version.changed.v1": {
            "model_name": "llama-3-8b-sft",
            "version": "3",
            "run_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "experiment_id": "1",
            "source": "mlflow-artifacts:/1/0f1e2d3c4b5a69788796a5b4c3d2e1f0/artifacts/model",
            "created_at": "2025-01-27T11:58:30Z",
            "aliases": ["champion"],
            "tags": {"job_id": JOB_ID},
            "change": "alias_created",
            "key": "champion",
            "value": None,
        },
    }
    seq = int(EXAMPLE_TIME.timestamp()) * 1_000_000_000
    for entity, fields in _STATUS_EXAMPLES.items():
        data[STATUS_PAYLOADS[entity].event_type] = {"entity": str(entity), "seq": seq, **fields}
    return data


def example_payload(event_type: str) -> EventPayload:
    """The example payload of ``event_type``, validated by its class."""
    return EVENT_TYPES[event_type].model_validate(example_data()[event_type])


def example_envelope(event_type: str) -> Envelope:
    """A complete example event of ``event_type`` with a stable id, time and trace context."""
    payload = example_payload(event_type)
    return new_event(
        payload,
        source=_source_of(event_type),
        correlation_id=EXAMPLE_CORRELATION_ID,
        traceparent=EXAMPLE_TRACEPARENT,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:llmops:example:{event_type}")),
        time=EXAMPLE_TIME,
    )


def _source_of(event_type: str) -> str:
    """Who would publish this example: the reporter for status, the MLflow poller for models."""
    data = example_data()[event_type]
    if "reporter" in data:
        return str(data["reporter"])
    if event_type.startswith("llmops.models."):
        return "tracking"
    return EXAMPLE_SOURCE
