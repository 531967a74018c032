"""``/catalog/datasets``: datasets, versions, diffs and restores, the folding of the
versioning worker's reports, and the training rule on dataset versions (SQLite and
PostgreSQL, real Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmops_shared.events import (
    DatasetRestoreRequested,
    DatasetVersionRequested,
    Event,
    Phase,
    StatusEntity,
    Stream,
    status_updated,
)
from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts, VersionProgress
from llmops_shared.specs import DatasetType
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from integration.gateway.harness import API, Gateway, auth, seed_request
from support.streams import read_events, wait_until

pytestmark = pytest.mark.integration

DATASETS = f"{API}/catalog/datasets"
STORAGE = "s3://llm-datasets/enterprise-instruction"
V1_FILES = [("a.jsonl", "0" * 32, 10), ("b.jsonl", "1" * 32, 20), ("old.jsonl", "2" * 32, 5)]
V2_FILES = [("a.jsonl", "0" * 32, 10), ("b.jsonl", "9" * 32, 25), ("c.jsonl", "3" * 32, 7)]


def facts(files: list[tuple[str, str, int]], **changes: Any) -> VersionFacts:
    values: dict[str, Any] = {
        "backend": "dvc",
        "digest": "d" * 32 + ".dir",
        "file_count": len(files),
        "total_bytes": sum(size for *_, size in files),
        "revision": "c" * 40,
        "tag": "v1.0.0",
        "remote_uri": "/remote",
        "files": files,
    }
    return VersionFacts.model_validate({**values, **changes})


async def datasets_events(gateway: Gateway) -> list[Event]:
    return await read_events(gateway.redis, f"{gateway.namespace}{Stream.DATASETS}")


async def wait_for_dataset_events(gateway: Gateway, count: int) -> list[Event]:
    async def enough() -> bool:
        return len(await datasets_events(gateway)) >= count

    await wait_until(enough, timeout_s=10)
    return await datasets_events(gateway)


async def create_dataset(gateway: Gateway, **changes: Any) -> dict[str, Any]:
    body = {"name": "enterprise-instruction", "type": "sft_pair", "storageUri": STORAGE, **changes}
    response = await gateway.client.post(DATASETS, json=body, headers=auth())
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


async def create_version(gateway: Gateway, dataset_id: str, tag: str) -> dict[str, Any]:
    response = await gateway.client.post(
        f"{DATASETS}/{dataset_id}/versions", json={"versionTag": tag}, headers=auth()
    )
    assert response.status_code == 202, response.text
    version: dict[str, Any] = response.json()
    return version


async def report(
    gateway: Gateway,
    entity: StatusEntity,
    entity_id: str,
    phase: Phase,
    *,
    reason: str | None = None,
    **details: Any,
) -> None:
    payload = status_updated(
        entity,
        entity_id=entity_id,
        phase=phase,
        reason=reason,
        reporter="versioning",
        details={key: value.model_dump(mode="json") for key, value in details.items()},
    )
    before = gateway.count("processed_events")
    await gateway.publish_status(payload)
    await gateway.wait_processed(before + 1)


async def succeeded_version(
    gateway: Gateway, dataset_id: str, tag: str, files: list[tuple[str, str, int]]
) -> dict[str, Any]:
    version = await create_version(gateway, dataset_id, tag)
    await report(
        gateway,
        StatusEntity.DATASET_VERSION,
        version["id"],
        Phase.SUCCEEDED,
        version=facts(files, tag=tag),
    )
    return version


async def get(gateway: Gateway, path: str) -> dict[str, Any]:
    response = await gateway.client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_list_and_read_datasets(gateway: Gateway) -> None:
    dataset = await create_dataset(gateway, schemaRef="schemas/sft-pair@1")
    assert (dataset["type"], dataset["storageUri"], dataset["schemaRef"]) == (
        "sft_pair",
        STORAGE,
        "schemas/sft-pair@1",
    )
    assert (await get(gateway, f"{DATASETS}/{dataset['id']}")) == dataset
    assert [d["id"] for d in (await get(gateway, DATASETS))["items"]] == [dataset["id"]]
    again = await gateway.client.post(
        DATASETS,
        json={"name": dataset["name"], "type": "rag_qa", "storageUri": STORAGE},
        headers=auth(),
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "dataset 'enterprise-instruction' already exists"


@pytest.mark.parametrize(
    ("changes", "loc"),
    [({"type": "images"}, "type"), ({"storageUri": "not a uri"}, "storageUri")],
)
async def test_bad_datasets_are_refused(
    gateway: Gateway, changes: dict[str, Any], loc: str
) -> None:
    body = {"name": "x", "type": "sft_pair", "storageUri": STORAGE, **changes}
    response = await gateway.client.post(DATASETS, json=body, headers=auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", loc]
    assert gateway.count("catalog_datasets") == 0


async def test_a_version_is_queued_then_folded_from_the_reports(gateway: Gateway) -> None:
    dataset = await create_dataset(gateway)
    version = await create_version(gateway, dataset["id"], "v1.0.0")
    assert (version["versionTag"], version["status"], version["storageUri"]) == (
        "v1.0.0",
        "Pending",
        STORAGE,
    )
    [event] = await wait_for_dataset_events(gateway, 1)
    assert event.payload == DatasetVersionRequested(
        dataset_id=dataset["id"],
        version_id=version["id"],
        version_tag="v1.0.0",
        dataset_type=DatasetType.SFT_PAIR,
        storage_uri=STORAGE,
        parent_version_id=None,
    )
    url = f"{DATASETS}/{dataset['id']}/versions/{version['id']}"
    progress = VersionProgress(stage="pushing", files_done=2, files_total=3)
    await report(
        gateway, StatusEntity.DATASET_VERSION, version["id"], Phase.RUNNING, progress=progress
    )
    running = await get(gateway, url)
    assert (running["status"], running["progress"]["files_done"]) == ("Running", 2)

    await report(
        gateway,
        StatusEntity.DATASET_VERSION,
        version["id"],
        Phase.SUCCEEDED,
        version=facts(V1_FILES),
    )
    done = await get(gateway, url)
    assert (done["status"], done["backend"], done["fileCount"], done["totalBytes"]) == (
        "Succeeded",
        "dvc",
        3,
        35,
    )
    assert (done["tag"], done["revision"], done["progress"]) == ("v1.0.0", "c" * 40, None)
    listed = await get(gateway, f"{DATASETS}/{dataset['id']}/versions")
    assert [item["id"] for item in listed["items"]] == [version["id"]]


async def test_tags_are_semantic_versions_and_unique(gateway: Gateway) -> None:
    dataset = await create_dataset(gateway)
    versions = f"{DATASETS}/{dataset['id']}/versions"
    bad = await gateway.client.post(versions, json={"versionTag": "latest"}, headers=auth())
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["msg"] == (
        "version_tag 'latest' is not a semantic version (e.g. v1.0.0 or 1.2.0-rc.1)"
    )
    lock = await gateway.client.post(versions, json={"versionTag": "1.0.0-x.lock"}, headers=auth())
    assert lock.status_code == 422
    assert "cannot end with '.lock'" in lock.json()["detail"][0]["msg"]
    first = await create_version(gateway, dataset["id"], "1.2.0-rc.1")
    duplicate = await gateway.client.post(
        versions, json={"versionTag": "1.2.0-rc.1"}, headers=auth()
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == (
        f"version tag '1.2.0-rc.1' already exists for dataset 'enterprise-instruction' "
        f"(version {first['id']}, Pending)"
    )
    missing = await gateway.client.post(
        f"{DATASETS}/nope/versions", json={"versionTag": "v1.0.0"}, headers=auth()
    )
    assert missing.status_code == 404
    assert gateway.count("dataset_versions") == 1


async def test_a_failed_version_keeps_nothing_and_its_tag_can_be_retried(
    gateway: Gateway,
) -> None:
    dataset = await create_dataset(gateway)
    version = await create_version(gateway, dataset["id"], "v1.0.0")
    reason = f"storage_uri {STORAGE} contains no files"
    await report(gateway, StatusEntity.DATASET_VERSION, version["id"], Phase.FAILED, reason=reason)
    failed = await get(gateway, f"{DATASETS}/{dataset['id']}/versions/{version['id']}")
    assert (failed["status"], failed["reason"], failed["fileCount"]) == ("Failed", reason, None)

    retried = await create_version(gateway, dataset["id"], "v1.0.0")
    assert (retried["id"], retried["status"], retried["reason"]) == (version["id"], "Pending", None)
    assert len(await wait_for_dataset_events(gateway, 2)) == 2


async def test_diff_is_answered_from_the_stored_manifests(gateway: Gateway) -> None:
    dataset = await create_dataset(gateway)
    v1 = await succeeded_version(gateway, dataset["id"], "v1.0.0", V1_FILES)
    v2 = await succeeded_version(gateway, dataset["id"], "v1.1.0", V2_FILES)
    assert v2["parentVersionId"] == v1["id"]
    events = await wait_for_dataset_events(gateway, 2)
    assert events[1].payload.parent_version_id == v1["id"]  # type: ignore[attr-defined]

    url = f"{DATASETS}/{dataset['id']}/versions/{v2['id']}/diff"
    by_parent = await get(gateway, url)
    explicit = await get(gateway, f"{url}?baseVersionId={v1['id']}")
    assert by_parent == explicit
    assert by_parent["baseVersionId"] == v1["id"]
    assert by_parent["added"] == [{"path": "c.jsonl", "baseSize": None, "size": 7}]
    assert by_parent["modified"] == [{"path": "b.jsonl", "baseSize": 20, "size": 25}]
    assert by_parent["deleted"] == [{"path": "old.jsonl", "baseSize": 5, "size": None}]
    assert by_parent["summary"] == {
        "added": 1, "modified": 1, "deleted": 1, "unchanged": 1,
        "bytesAdded": 7, "bytesDeleted": 5, "sizeDelta": 7,
    }  # fmt: skip

    no_parent = await gateway.client.get(f"{DATASETS}/{dataset['id']}/versions/{v1['id']}/diff")
    assert no_parent.status_code == 422
    pending = await create_version(gateway, dataset["id"], "v2.0.0")
    against_pending = await gateway.client.get(f"{url}?baseVersionId={pending['id']}")
    assert against_pending.status_code == 409
    assert "a diff needs two Succeeded versions" in against_pending.json()["detail"]


async def test_restore_is_queued_for_a_succeeded_version_and_folded(gateway: Gateway) -> None:
    dataset = await create_dataset(gateway)
    pending = await create_version(gateway, dataset["id"], "v0.1.0")
    target = "s3://restores/enterprise-instruction-v1"
    refused = await gateway.client.post(
        f"{DATASETS}/{dataset['id']}/versions/{pending['id']}/restore",
        json={"targetUri": target},
        headers=auth(),
    )
    assert refused.status_code == 409
    v1 = await succeeded_version(gateway, dataset["id"], "v1.0.0", V1_FILES)
    response = await gateway.client.post(
        f"{DATASETS}/{dataset['id']}/versions/{v1['id']}/restore",
        json={"targetUri": target},
        headers=auth(),
    )
    assert response.status_code == 202, response.text
    restore = response.json()
    events = await wait_for_dataset_events(gateway, 3)
    assert events[-1].payload == DatasetRestoreRequested(
        restore_id=restore["id"],
        dataset_id=dataset["id"],
        version_id=v1["id"],
        version_tag="v1.0.0",
        target_uri=target,
    )
    done = RestoreFacts(
        version_id=v1["id"], target_uri=target, files_done=3, files_total=3, bytes_done=35,
        bytes_total=35,
    )  # fmt: skip
    await report(
        gateway, StatusEntity.DATASET_RESTORE, restore["id"], Phase.SUCCEEDED, restore=done
    )
    read = await get(gateway, restore["statusUrl"])
    assert (read["status"], read["filesDone"], read["bytesTotal"]) == ("Succeeded", 3, 35)


def sft_job(version: str, dataset_type: str = "sft_pair") -> dict[str, Any]:
    dataset_ref = {**SEED_TRAIN_JOB_SPEC["dataset_ref"], "version": version, "type": dataset_type}
    return seed_request(dataset_ref=dataset_ref)


async def test_training_needs_a_succeeded_version_of_a_fitting_dataset(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    await gateway.register_base_model()
    unknown = await gateway.submit(sft_job("v1.0.0"))
    assert unknown.status_code == 422
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "trainJobSpec", "dataset_ref", "version"]
    assert error["msg"] == (
        "Dataset 'enterprise-instruction' version 'v1.0.0' was not found in the catalog"
    )

    dataset = await create_dataset(gateway)
    await create_version(gateway, dataset["id"], "v1.0.0")
    still_pending = await gateway.submit(sft_job("v1.0.0"))
    assert still_pending.status_code == 422
    await succeeded_version(gateway, dataset["id"], "v1.1.0", V1_FILES)
    accepted = await gateway.submit(sft_job("v1.1.0"))
    assert accepted.status_code == 202, accepted.text

    rag_dataset = await create_dataset(gateway, name="support-qa", type="rag_qa")
    await succeeded_version(gateway, rag_dataset["id"], "v1.1.0", V1_FILES)
    rag_ref = {**sft_job("v1.1.0")["trainJobSpec"]["dataset_ref"], "name": "support-qa"}
    rag = await gateway.submit(seed_request(dataset_ref=rag_ref))
    assert rag.status_code == 422
    [error] = rag.json()["detail"]
    assert error["msg"] == "Dataset type 'rag_qa' is not compatible with job_type 'SFT'"
    assert gateway.count("training_jobs") == 1
