"""``/catalog/models/import``, registry links and check-updates, and the folding of the
registry worker's reports, on SQLite and PostgreSQL with real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from llmops_shared.events import (
    DeadLetterEntry,
    Event,
    ModelImportRequested,
    ModelUpdateCheckRequested,
    Phase,
    StatusEntity,
    Stream,
    new_seq,
    status_updated,
)
from llmops_shared.events.payloads.catalog import (
    ImportedModel,
    ImportProgress,
    ModelFile,
    UpstreamCheck,
)
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from integration.gateway.harness import API, Gateway, auth, seed_request
from support.streams import read_events, wait_until

pytestmark = pytest.mark.integration

MODELS = f"{API}/catalog/models"
REPO = "sentence-transformers/all-MiniLM-L6-v2"
SHA = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
NEWER_SHA = "8b3219a92973c328a8e22fadcfa821b5dc75636a"


def embedding_request(base_model_ref: str) -> dict[str, Any]:
    """The seed's request turned into an EMBEDDING job on ``base_model_ref`` (a bert model)."""
    dataset = {**SEED_TRAIN_JOB_SPEC["dataset_ref"], "type": "embedding_pair"}
    return seed_request(
        base_model_ref=base_model_ref,
        model_family="bert",
        job_type="EMBEDDING",
        dataset_ref=dataset,
    )


def imported(**changes: Any) -> ImportedModel:
    facts: dict[str, Any] = {
        "registry_type": "huggingface",
        "repo_id": REPO,
        "revision": SHA,
        "url": f"https://hub.example/{REPO}",
        "architectures": ["BertModel"],
        "model_type": "bert",
        "family": "bert",
        "max_position_embeddings": 512,
        "license": "apache-2.0",
        "safetensors": True,
        "files": [ModelFile(path="config.json", size=612)],
        "total_bytes": 612,
    }
    return ImportedModel.model_validate({**facts, **changes})


async def catalog_events(gateway: Gateway) -> list[Event]:
    return await read_events(gateway.redis, f"{gateway.namespace}{Stream.CATALOG}")


async def wait_for_catalog_events(gateway: Gateway, count: int) -> list[Event]:
    async def enough() -> bool:
        return len(await catalog_events(gateway)) >= count

    await wait_until(enough, timeout_s=10)
    return await catalog_events(gateway)


async def start_import(gateway: Gateway, **changes: Any) -> dict[str, Any]:
    body = {"registryType": "huggingface", "registryModelId": REPO, **changes}
    response = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert response.status_code == 202, response.text
    model: dict[str, Any] = response.json()
    return model


async def report(
    gateway: Gateway, model_id: str, phase: Phase, *, reason: str | None = None, **details: Any
) -> None:
    payload = status_updated(
        StatusEntity.MODEL,
        entity_id=model_id,
        phase=phase,
        reason=reason,
        reporter="registry",
        details={key: value.model_dump(mode="json") for key, value in details.items()},
    )
    before = gateway.count("processed_events")
    await gateway.publish_status(payload)
    await gateway.wait_processed(before + 1)


async def read(gateway: Gateway, model_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{MODELS}/{model_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def links(gateway: Gateway, model_id: str) -> list[dict[str, Any]]:
    response = await gateway.client.get(f"{MODELS}/{model_id}/registry-links")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def ready_model(gateway: Gateway, **facts: Any) -> dict[str, Any]:
    model = await start_import(gateway)
    await report(gateway, model["id"], Phase.SUCCEEDED, model=imported(**facts))
    return model


async def test_import_queues_the_request_and_the_reports_make_the_model_ready(
    gateway: Gateway,
) -> None:
    model = await start_import(gateway, revision="main", download=True)
    assert (model["name"], model["status"], model["family"]) == (REPO, "Pending", None)
    assert (model["source"], model["verified"]) == ("huggingface", False)
    [event] = await wait_for_catalog_events(gateway, 1)
    assert event.payload == ModelImportRequested(
        model_id=model["id"],
        registry_type="huggingface",
        registry_model_id=REPO,
        revision="main",
        download=True,
    )

    progress = ImportProgress(stage="downloading", files_done=3, files_total=10)
    await report(gateway, model["id"], Phase.RUNNING, progress=progress)
    running = await read(gateway, model["id"])
    assert (running["status"], running["progress"]["files_done"]) == ("Running", 3)

    await report(gateway, model["id"], Phase.SUCCEEDED, model=imported())
    ready = await read(gateway, model["id"])
    assert (ready["status"], ready["verified"], ready["progress"]) == ("Ready", True, None)
    assert (ready["family"], ready["maxPositionEmbeddings"]) == ("bert", 512)
    assert ready["hfArchitecture"] == "BertModel"
    assert ready["facts"]["license"] == "apache-2.0"
    assert ready["facts"]["files"] == [{"path": "config.json", "size": 612}]
    [link] = await links(gateway, model["id"])
    assert (link["repoId"], link["revision"], link["resolvedRevision"]) == (REPO, "main", SHA)
    assert (link["url"], link["status"]) == (f"https://hub.example/{REPO}", "Ready")
    assert link["lastSyncedAt"] is not None
    listed = (await gateway.client.get(MODELS)).json()["items"]
    assert [item["id"] for item in listed] == [model["id"]]


async def test_a_failed_import_is_unusable_and_importing_it_again_retries(
    gateway: Gateway,
) -> None:
    model = await start_import(gateway, name="minilm")
    reason = "unsupported architecture GPT2LMHeadModel"
    await report(gateway, model["id"], Phase.FAILED, reason=reason)
    failed = await read(gateway, model["id"])
    assert (failed["status"], failed["reason"], failed["family"]) == ("Failed", reason, None)

    refused = await gateway.submit(embedding_request("minilm"))
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["msg"] == f"Model 'minilm' is not ready to use: its import failed ({reason})"

    again = await start_import(gateway, name="minilm")
    assert (again["id"], again["status"], again["reason"]) == (model["id"], "Pending", None)
    assert len(await wait_for_catalog_events(gateway, 2)) == 2
    other_repo = await gateway.client.post(
        f"{MODELS}/import",
        json={"registryType": "huggingface", "registryModelId": "org/other", "name": "minilm"},
        headers=auth(),
    )
    assert other_repo.status_code == 409
    assert other_repo.json()["detail"] == "catalog model 'minilm' already exists"


async def test_a_pending_import_cannot_be_trained_on_yet(gateway: Gateway) -> None:
    await start_import(gateway, name="minilm")
    response = await gateway.submit(embedding_request("minilm"))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "trainJobSpec", "base_model_ref"]
    assert error["msg"] == "Model 'minilm' is not ready to use: its import is Pending"
    assert gateway.count("training_jobs") == 0


async def test_the_imported_context_length_is_what_training_is_checked_against(
    gateway: Gateway,
) -> None:
    await ready_model(gateway)
    body = embedding_request(REPO)
    body["trainJobSpec"]["hyperparams"] = {
        **body["trainJobSpec"]["hyperparams"],
        "max_seq_len": 1024,
    }
    response = await gateway.submit(body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "trainJobSpec", "hyperparams", "max_seq_len"]
    assert error["msg"] == (
        "EMBEDDING max_seq_len must be <= base_model.max_position_embeddings (1024 > 512)"
    )
    body["trainJobSpec"]["hyperparams"]["max_seq_len"] = 512
    assert (await gateway.submit(body)).status_code == 202


async def test_a_ready_model_or_the_same_repo_cannot_be_imported_twice(gateway: Gateway) -> None:
    model = await ready_model(gateway)
    body = {"registryType": "huggingface", "registryModelId": REPO}
    same_name = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert same_name.status_code == 409
    renamed = await gateway.client.post(
        f"{MODELS}/import", json={**body, "name": "again"}, headers=auth()
    )
    assert renamed.status_code == 409
    assert (
        renamed.json()["detail"] == f"'{REPO}' is already imported as catalog model {model['id']}"
    )
    assert gateway.count("catalog_models") == 1


async def test_check_updates_records_the_upstream_answer_on_the_link(gateway: Gateway) -> None:
    model = await start_import(gateway)
    pending = await gateway.client.post(f"{MODELS}/{model['id']}/check-updates", headers=auth())
    assert pending.status_code == 409
    await report(gateway, model["id"], Phase.SUCCEEDED, model=imported())

    response = await gateway.client.post(f"{MODELS}/{model['id']}/check-updates", headers=auth())
    assert response.status_code == 202, response.text
    events = await wait_for_catalog_events(gateway, 2)
    assert events[-1].payload == ModelUpdateCheckRequested(
        model_id=model["id"],
        registry_type="huggingface",
        registry_model_id=REPO,
        revision=None,
        pinned_revision=SHA,
    )
    checked_at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    check = UpstreamCheck(
        pinned_revision=SHA, upstream_revision=NEWER_SHA, updated=True, checked_at=checked_at
    )
    await report(gateway, model["id"], Phase.SUCCEEDED, reason="upstream updated", upstream=check)
    [link] = await links(gateway, model["id"])
    assert (link["updateAvailable"], link["upstreamRevision"]) == (True, NEWER_SHA)
    assert link["upstreamCheckedAt"] == "2026-11-23T12:00:00Z"
    assert link["resolvedRevision"] == SHA  # the pin does not move by itself
    still = await read(gateway, model["id"])
    assert (still["status"], still["reason"]) == ("Ready", None)

    unreachable = UpstreamCheck(
        pinned_revision=SHA, updated=False, checked_at=checked_at, error="Hub unreachable"
    )
    await report(gateway, model["id"], Phase.SUCCEEDED, upstream=unreachable)
    [link] = await links(gateway, model["id"])
    assert (link["updateAvailable"], link["checkError"]) == (True, "Hub unreachable")


async def test_with_the_registry_off_an_import_records_the_request_unverified(
    start_gateway: Any,
) -> None:
    gateway: Gateway = await start_gateway(model_registry_enabled=False)
    body = {"registryType": "huggingface", "registryModelId": REPO}
    missing = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert missing.status_code == 422
    assert [error["loc"] for error in missing.json()["detail"]] == [
        ["body", "family"],
        ["body", "max_position_embeddings"],
    ]
    model = await start_import(gateway, family="bert", maxPositionEmbeddings=512)
    assert (model["status"], model["verified"], model["family"]) == ("Ready", False, "bert")
    [link] = await links(gateway, model["id"])
    assert (link["status"], link["resolvedRevision"]) == ("Ready", None)
    checked = await gateway.client.post(f"{MODELS}/{model['id']}/check-updates", headers=auth())
    assert checked.status_code == 409
    assert await catalog_events(gateway) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"registryType": "s3", "registryModelId": REPO}, ["body", "registryType"]),
        ({"registryType": "huggingface", "registryModelId": "a/b/c"}, ["body", "registryModelId"]),
        (
            {"registryType": "huggingface", "registryModelId": REPO, "family": "gpt2"},
            ["body", "family"],
        ),
    ],
)
async def test_bad_import_requests_are_refused(
    gateway: Gateway, body: dict[str, Any], loc: list[str]
) -> None:
    response = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    assert gateway.count("catalog_models") == 0


async def test_a_succeeded_report_without_facts_is_dead_lettered(gateway: Gateway) -> None:
    model = await start_import(gateway)
    await gateway.publish_status(
        status_updated(
            StatusEntity.MODEL, entity_id=model["id"], phase=Phase.SUCCEEDED, reporter="registry"
        )
    )
    dlq = f"{gateway.namespace}llmops.status.dlq"

    async def dead_lettered() -> bool:
        return bool(await gateway.redis.xlen(dlq))

    await wait_until(dead_lettered, timeout_s=10)
    [(_, fields)] = await gateway.redis.xrange(dlq)
    entry = DeadLetterEntry.from_fields(cast("dict[bytes, bytes]", fields))
    assert entry.reason == "NonRetryableError: a Succeeded model report needs details.model"
    assert (await read(gateway, model["id"]))["status"] == "Pending"


async def test_a_late_report_does_not_undo_a_newer_one(gateway: Gateway) -> None:
    model = await start_import(gateway)
    early = new_seq()
    await report(gateway, model["id"], Phase.SUCCEEDED, model=imported())
    late = status_updated(
        StatusEntity.MODEL,
        entity_id=model["id"],
        phase=Phase.RUNNING,
        reporter="registry",
        seq=early,
    )
    before = gateway.count("processed_events")
    await gateway.publish_status(late)
    await gateway.wait_processed(before + 1)
    assert (await read(gateway, model["id"]))["status"] == "Ready"
