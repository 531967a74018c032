"""Submitting, reading and cancelling training jobs through the REST API (both databases)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from llmops_shared.events import TrainingJobCancelled, TrainingJobSubmitted
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from integration.gateway.harness import API, Gateway, auth, new_id, seed_request
from support.streams import wait_until

pytestmark = pytest.mark.integration


async def test_seed_job_is_accepted_stored_and_published_once(gateway: Gateway) -> None:
    model = await gateway.register_base_model()
    response = await gateway.submit(headers={"X-Correlation-ID": "corr-seed-51"})

    assert response.status_code == 202, response.text
    assert response.headers["X-Correlation-ID"] == "corr-seed-51"
    job = response.json()
    assert job["status"] == "Pending"
    assert job["jobType"] == "finetune"
    assert job["modelId"] == "model-1"
    assert job["trainJobSpec"] == SEED_TRAIN_JOB_SPEC
    assert job["statusUrl"] == f"{API}/training/jobs/{job['id']}"
    assert job["createdAt"].endswith("Z")
    assert gateway.count("training_jobs") == 1

    events = await gateway.wait_for_training_events(1)
    assert len(events) == 1
    event = events[0]
    assert event.type == "llmops.training.job.submitted.v1"
    assert event.envelope.correlationid == "corr-seed-51"
    assert event.envelope.source == "gateway"
    payload = event.payload_as(TrainingJobSubmitted)
    assert payload.job_id == job["id"]
    assert payload.model_id == model["id"]  # the base model's catalog id
    assert payload.spec.model_dump(mode="json") == SEED_TRAIN_JOB_SPEC

    async def marked_published() -> bool:  # the relay commits its UPDATE after the XADD
        return gateway.count("outbox WHERE published_at IS NULL") == 0

    await wait_until(marked_published, timeout_s=10)


async def test_a_correlation_id_is_generated_when_absent(gateway: Gateway) -> None:
    await gateway.register_base_model()
    response = await gateway.submit()
    correlation_id = response.headers["X-Correlation-ID"]
    assert len(correlation_id) == 36
    events = await gateway.wait_for_training_events(1)
    assert events[0].envelope.correlationid == correlation_id
    assert response.json()["correlationId"] == correlation_id


def _spec(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    spec = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    change(spec)
    return spec


def _pretrain(spec: dict[str, Any]) -> None:
    spec.update(job_type="PRETRAIN", base_model_ref=None, method="full")
    spec["dataset_ref"]["type"] = "pretrain_corpus"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = spec
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        for one in changes:
            one(spec)

    return change


INVALID_SPECS = [
    pytest.param(
        _set("model_family", "gpt"), ("model_family",),
        "Model family 'gpt' is not supported", id="unsupported-family",
    ),
    pytest.param(
        _set("model_family", "bert"), ("model_family",),
        "Model family 'bert' is not supported for job_type 'SFT'", id="bert-for-sft",
    ),
    pytest.param(
        _set("dataset_ref.type", "rag_qa"), ("dataset_ref", "type"),
        "Dataset type 'rag_qa' is not compatible with job_type 'SFT'", id="dataset-type-mismatch",
    ),
    pytest.param(
        _set("dataset_ref.type", "parquet"), ("dataset_ref", "type"),
        "Dataset type 'parquet' is not supported", id="unknown-dataset-type",
    ),
    pytest.param(
        _both(_pretrain, _set("base_model_ref", "llama-3-8b-pretrain-v1")), ("base_model_ref",),
        "base_model_ref must be null for job_type 'PRETRAIN'", id="pretrain-with-base-model",
    ),
    pytest.param(
        _set("base_model_ref", None), ("base_model_ref",),
        "base_model_ref is required for job_type 'SFT'", id="sft-without-base-model",
    ),
    pytest.param(
        _both(_pretrain, _set("method", "lora")), ("method",),
        "PRETRAIN only supports method 'full', got 'lora'", id="pretrain-with-lora",
    ),
    pytest.param(
        _set("hyperparams.precision", "fp8"), ("hyperparams", "precision"),
        "Input should be 'fp16' or 'bf16'", id="bad-precision",
    ),
    pytest.param(
        _set("hyperparams.lr", 0), ("hyperparams", "lr"),
        "Input should be greater than 0", id="lr-zero",
    ),
    pytest.param(
        _set("hyperparams.batch_size", 0), ("hyperparams", "batch_size"),
        "Input should be greater than or equal to 1", id="batch-size-zero",
    ),
    pytest.param(
        _set("hyperparams.num_epochs", -1), ("hyperparams", "num_epochs"),
        "Input should be greater than or equal to 1", id="epochs-negative",
    ),
    pytest.param(
        _set("hyperparams.max_seq_len", 0), ("hyperparams", "max_seq_len"),
        "Input should be greater than or equal to 1", id="max-seq-len-zero",
    ),
    pytest.param(
        _set("resources.nodes", 0), ("resources", "nodes"),
        "Input should be greater than or equal to 1", id="nodes-zero",
    ),
    pytest.param(
        _set("resources.gpus", 0), ("resources", "gpus"),
        "resources.gpus must be >= 1 when use_gpu is true (got 0)", id="use-gpu-without-gpus",
    ),
    pytest.param(
        _set("learning_rate", 0.1), ("learning_rate",),
        "Extra inputs are not permitted", id="unknown-field",
    ),
    pytest.param(
        _set("hyperparams.dropout", 0.1), ("hyperparams", "dropout"),
        "Extra inputs are not permitted", id="unknown-nested-field",
    ),
    pytest.param(
        _set("base_model_ref", "no-such-model"), ("base_model_ref",),
        "Base model 'no-such-model' was not found in the catalog", id="base-model-not-in-catalog",
    ),
    pytest.param(
        _set("hyperparams.max_seq_len", 16384), ("hyperparams", "max_seq_len"),
        "SFT max_seq_len must be <= base_model.max_position_embeddings (16384 > 8192)",
        id="max-seq-len-over-base-model",
    ),
    pytest.param(
        _set("model_family", "mistral"), ("model_family",),
        "model_family 'mistral' does not match base model 'llama-3-8b-pretrain-v1'",
        id="family-differs-from-base-model",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("change", "loc", "message"), INVALID_SPECS)
async def test_every_rule_is_a_422_and_nothing_is_stored_or_published(
    gateway: Gateway,
    change: Callable[[dict[str, Any]], None],
    loc: tuple[str, ...],
    message: str,
) -> None:
    await gateway.register_base_model()
    body = {**seed_request(), "trainJobSpec": _spec(change)}

    response = await gateway.submit(body)

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    matching = [e for e in errors if message in e["msg"]]
    assert matching, errors
    assert tuple(matching[0]["loc"]) == ("body", "trainJobSpec", *loc)
    assert gateway.count("training_jobs") == 0
    assert gateway.count("outbox") == 0
    assert await gateway.training_events() == []


async def test_unknown_top_level_field_and_bad_json_are_422(gateway: Gateway) -> None:
    await gateway.register_base_model()
    unknown = await gateway.submit({**seed_request(), "priority": "high"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "priority"]
    broken = await gateway.client.post(
        f"{API}/training/jobs",
        content=b"{not json",
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    missing = await gateway.submit({"jobType": "finetune"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "trainJobSpec"]
    assert gateway.count("training_jobs") == 0


async def test_list_newest_first_get_and_404(gateway: Gateway) -> None:
    await gateway.register_base_model()
    ids = [(await gateway.submit()).json()["id"] for _ in range(3)]

    listed = await gateway.client.get(f"{API}/training/jobs")
    assert listed.status_code == 200
    assert [job["id"] for job in listed.json()["items"]] == ids[::-1]
    page = await gateway.client.get(f"{API}/training/jobs", params={"limit": 1, "offset": 1})
    assert [job["id"] for job in page.json()["items"]] == [ids[1]]

    one = await gateway.client.get(f"{API}/training/jobs/{ids[0]}")
    assert one.status_code == 200
    assert one.json()["id"] == ids[0]

    missing_id = new_id()
    missing = await gateway.client.get(f"{API}/training/jobs/{missing_id}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"training job {missing_id} not found"}
    bad_limit = await gateway.client.get(f"{API}/training/jobs", params={"limit": 0})
    assert bad_limit.status_code == 422


async def test_idempotency_key_returns_the_same_job_and_conflicts_on_another_body(
    gateway: Gateway,
) -> None:
    await gateway.register_base_model()
    key = {"Idempotency-Key": f"key-{new_id()}"}
    first = await gateway.submit(headers=key)
    again = await gateway.submit(headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]

    other = seed_request()
    other["jobType"] = "another-label"
    conflict = await gateway.submit(other, headers=key)
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]

    assert gateway.count("training_jobs") == 1
    assert len(await gateway.wait_for_training_events(1)) == 1
    assert gateway.count("outbox") == 1


async def test_cancel_writes_status_and_event_then_409(gateway: Gateway) -> None:
    await gateway.register_base_model()
    job_id = (await gateway.submit()).json()["id"]

    cancelled = await gateway.client.post(
        f"{API}/training/jobs/{job_id}/cancel",
        json={"reason": "wrong dataset"},
        headers={**auth(), "X-Correlation-ID": "corr-cancel"},
    )
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"
    assert cancelled.json()["reason"] == "wrong dataset"

    events = await gateway.wait_for_training_events(2)
    assert [e.type for e in events] == [
        "llmops.training.job.submitted.v1",
        "llmops.training.job.cancelled.v1",
    ]
    payload = events[1].payload_as(TrainingJobCancelled)
    assert (payload.job_id, payload.reason) == (job_id, "wrong dataset")
    assert events[1].envelope.correlationid == "corr-cancel"

    again = await gateway.client.post(f"{API}/training/jobs/{job_id}/cancel", headers=auth())
    assert again.status_code == 409
    assert again.json() == {"detail": f"training job {job_id} is already Cancelled"}
    assert gateway.count("outbox") == 2

    missing = await gateway.client.post(f"{API}/training/jobs/{new_id()}/cancel", headers=auth())
    assert missing.status_code == 404
    read = await gateway.client.get(f"{API}/training/jobs/{job_id}")
    assert read.json()["status"] == "Cancelled"
