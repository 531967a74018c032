"""Where a training job's inputs are: a catalog model's ``storageUri`` (typed in, or the
snapshot an import downloaded), and what ``llmops.training.job.submitted.v1`` tells the
trainer to read (``base_model_uri``, ``dataset_version``), on SQLite and PostgreSQL with real
Redis."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_shared.events import Phase, StatusEntity, TrainingJobSubmitted, status_updated
from llmops_shared.events.payloads.catalog import ImportedModel
from llmops_shared.events.payloads.datasets import VersionFacts
from llmops_shared.events.payloads.training import DatasetVersionPin
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from integration.gateway.harness import API, BASE_MODEL, Gateway, auth, seed_request

pytestmark = pytest.mark.integration

MODELS = f"{API}/catalog/models"
DATASETS = f"{API}/catalog/datasets"
REPO = "sentence-transformers/all-MiniLM-L6-v2"
SHA = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
SNAPSHOT = "file:///var/lib/llmops/models/sentence-transformers--all-MiniLM-L6-v2/" + SHA
DIGEST = "0123456789abcdef0123456789abcdef.dir"


async def report(
    gateway: Gateway, entity: StatusEntity, entity_id: str, phase: Phase, **details: Any
) -> None:
    """A worker's report with typed ``details``; returns once the gateway folded it."""
    payload = status_updated(
        entity,
        entity_id=entity_id,
        phase=phase,
        reporter="tests",
        details={key: value.model_dump(mode="json") for key, value in details.items()},
    )
    before = gateway.count("processed_events")
    await gateway.publish_status(payload)
    await gateway.wait_processed(before + 1)


def imported(**changes: Any) -> ImportedModel:
    facts: dict[str, Any] = {
        "registry_type": "huggingface",
        "repo_id": REPO,
        "revision": SHA,
        "url": f"https://hub.example/{REPO}",
        "architectures": ["BertModel"],
        "family": "bert",
        "max_position_embeddings": 512,
        "safetensors": True,
    }
    return ImportedModel.model_validate({**facts, **changes})


async def import_ready(gateway: Gateway, **facts: Any) -> dict[str, Any]:
    """An import of REPO (named ``minilm``) the registry worker reported Succeeded."""
    body = {"registryType": "huggingface", "registryModelId": REPO, "name": "minilm"}
    response = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert response.status_code == 202, response.text
    model: dict[str, Any] = response.json()
    await report(gateway, StatusEntity.MODEL, model["id"], Phase.SUCCEEDED, model=imported(**facts))
    return model


def embedding_request() -> dict[str, Any]:
    """The seed's request as an EMBEDDING job on the imported ``minilm``."""
    dataset = {**SEED_TRAIN_JOB_SPEC["dataset_ref"], "type": "embedding_pair"}
    hyperparams = {**SEED_TRAIN_JOB_SPEC["hyperparams"], "max_seq_len": 512}
    return seed_request(
        base_model_ref="minilm",
        model_family="bert",
        job_type="EMBEDDING",
        dataset_ref=dataset,
        hyperparams=hyperparams,
    )


async def submitted_event(gateway: Gateway, body: dict[str, Any]) -> TrainingJobSubmitted:
    """Submit ``body`` (accepted) and read the event the relay put on ``llmops.training``."""
    before = len(await gateway.training_events())
    response = await gateway.submit(body)
    assert response.status_code == 202, response.text
    events = await gateway.wait_for_training_events(before + 1)
    payload = events[-1].payload_as(TrainingJobSubmitted)
    assert payload.job_id == response.json()["id"]
    return payload


# --- catalog models -------------------------------------------------------------------------


async def test_a_manual_model_keeps_its_storage_uri(gateway: Gateway) -> None:
    uri = "s3://llm-models/llama-3-8b-pretrain-v1"
    created = await gateway.register_base_model(storageUri=uri)
    assert created["storageUri"] == uri
    read = (await gateway.client.get(f"{MODELS}/{created['id']}")).json()
    assert read == created
    [listed] = (await gateway.client.get(MODELS)).json()["items"]
    assert listed["storageUri"] == uri
    other = await gateway.register_base_model(name="no-location")
    assert other["storageUri"] is None
    local = await gateway.register_base_model(name="local", storage_uri="/srv/models/llama")
    assert local["storageUri"] == "/srv/models/llama"  # an absolute path; snake_case accepted


@pytest.mark.parametrize(
    "bad",
    ["models/llama", "s3://llm-models/with space", "", "s3://" + "x" * 2048],
    ids=["relative-path", "whitespace", "empty", "too-long"],
)
async def test_a_storage_uri_that_is_not_a_uri_is_a_422_naming_the_field(
    gateway: Gateway, bad: str
) -> None:
    response = await gateway.client.post(
        MODELS, json={**BASE_MODEL, "storageUri": bad}, headers=auth()
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "storageUri"]
    assert gateway.count("catalog_models") == 0


async def test_an_imported_snapshot_becomes_the_models_storage_uri(gateway: Gateway) -> None:
    with_snapshot = await import_ready(gateway, snapshot_uri=SNAPSHOT)
    ready = (await gateway.client.get(f"{MODELS}/{with_snapshot['id']}")).json()
    assert (ready["status"], ready["storageUri"]) == ("Ready", SNAPSHOT)
    assert ready["facts"]["snapshot_uri"] == SNAPSHOT  # still reported as the import said

    body = {"registryType": "huggingface", "registryModelId": "org/other", "name": "other"}
    pending = (await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())).json()
    assert pending["storageUri"] is None
    await report(
        gateway,
        StatusEntity.MODEL,
        pending["id"],
        Phase.SUCCEEDED,
        model=imported(repo_id="org/other"),  # metadata only: nothing downloaded
    )
    assert (await gateway.client.get(f"{MODELS}/{pending['id']}")).json()["storageUri"] is None


# --- the submission event -------------------------------------------------------------------


async def test_the_base_model_uri_is_the_models_storage_uri(gateway: Gateway) -> None:
    uri = "s3://llm-models/llama-3-8b-pretrain-v1"
    await gateway.register_base_model(storageUri=uri)
    event = await submitted_event(gateway, seed_request())
    assert event.base_model_uri == uri
    assert event.dataset_version is None  # the dataset is not in the catalog here


async def test_a_manual_model_without_a_location_gives_no_base_model_uri(gateway: Gateway) -> None:
    await gateway.register_base_model()
    assert (await submitted_event(gateway, seed_request())).base_model_uri is None


async def test_an_import_without_a_snapshot_is_read_from_the_hub_at_its_pinned_commit(
    gateway: Gateway,
) -> None:
    await import_ready(gateway)
    event = await submitted_event(gateway, embedding_request())
    assert event.base_model_uri == f"hf://{REPO}@{SHA}"


async def test_a_downloaded_snapshot_wins_over_the_hub(gateway: Gateway) -> None:
    await import_ready(gateway, snapshot_uri=SNAPSHOT)
    assert (await submitted_event(gateway, embedding_request())).base_model_uri == SNAPSHOT


async def test_an_import_recorded_with_the_registry_off_has_no_location(
    start_gateway: Any,
) -> None:
    gateway: Gateway = await start_gateway(model_registry_enabled=False)
    body = {"registryType": "huggingface", "registryModelId": REPO, "name": "minilm",
            "family": "bert", "maxPositionEmbeddings": 512}  # fmt: skip
    response = await gateway.client.post(f"{MODELS}/import", json=body, headers=auth())
    assert response.status_code == 202, response.text
    # no commit was resolved: "hf://repo@None" or the moving default branch would be a lie
    assert (await submitted_event(gateway, embedding_request())).base_model_uri is None


async def test_pretraining_has_no_base_model_uri(gateway: Gateway) -> None:
    await gateway.register_base_model(storageUri="s3://llm-models/unused")
    dataset = {**SEED_TRAIN_JOB_SPEC["dataset_ref"], "type": "pretrain_corpus"}
    body = seed_request(
        job_type="PRETRAIN", base_model_ref=None, method="full", dataset_ref=dataset
    )
    event = await submitted_event(gateway, body)
    assert (event.model_id, event.base_model_uri) == (None, None)


async def versioned_dataset(gateway: Gateway, tag: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The seed's dataset with version ``tag`` reported Succeeded with ``facts``; the ids."""
    body = {"name": "enterprise-instruction", "type": "sft_pair",
            "storageUri": "s3://llm-datasets/enterprise-instruction"}  # fmt: skip
    dataset = (await gateway.client.post(DATASETS, json=body, headers=auth())).json()
    response = await gateway.client.post(
        f"{DATASETS}/{dataset['id']}/versions", json={"versionTag": tag}, headers=auth()
    )
    assert response.status_code == 202, response.text
    version = response.json()
    values: dict[str, Any] = {"backend": "dvc", "digest": DIGEST, "file_count": 1,
                              "total_bytes": 10, "tag": tag, "files": [("a.jsonl", "0" * 32, 10)],
                              **facts}  # fmt: skip
    await report(
        gateway,
        StatusEntity.DATASET_VERSION,
        version["id"],
        Phase.SUCCEEDED,
        version=VersionFacts.model_validate(values),
    )
    return {"dataset_id": dataset["id"], "version_id": version["id"]}


def job_on(tag: str) -> dict[str, Any]:
    return seed_request(dataset_ref={**SEED_TRAIN_JOB_SPEC["dataset_ref"], "version": tag})


async def test_the_dataset_version_is_pinned_by_its_recorded_dvc_facts(gateway: Gateway) -> None:
    await gateway.register_base_model()
    revision = "c" * 40
    ids = await versioned_dataset(
        gateway,
        "v1.0.0",
        {"revision": revision, "remote_uri": "s3://dvc-remote/enterprise-instruction"},
    )
    event = await submitted_event(gateway, job_on("v1.0.0"))
    assert event.dataset_id == ids["dataset_id"]
    assert event.dataset_version == DatasetVersionPin(
        version_id=ids["version_id"],
        dataset_id=ids["dataset_id"],
        backend="dvc",
        tag="v1.0.0",
        digest=DIGEST,
        remote_uri="s3://dvc-remote/enterprise-instruction",
        revision=revision,
    )


async def test_a_builtin_version_is_pinned_without_a_git_revision(gateway: Gateway) -> None:
    await gateway.register_base_model()
    store = "/var/lib/llmops/versioning/builtin"
    ids = await versioned_dataset(gateway, "v2.0.0", {"backend": "builtin", "remote_uri": store})
    pin = (await submitted_event(gateway, job_on("v2.0.0"))).dataset_version
    assert pin is not None
    assert (pin.version_id, pin.backend, pin.tag) == (ids["version_id"], "builtin", "v2.0.0")
    assert (pin.digest, pin.remote_uri, pin.revision) == (DIGEST, store, None)


async def test_a_version_whose_facts_make_no_pin_is_sent_without_one(gateway: Gateway) -> None:
    """A version recorded without a remote (or with a digest that is no '.dir' md5) is still a
    Succeeded version the rules accept; the trainer then reads the spec's storage_uri."""
    await gateway.register_base_model()
    await versioned_dataset(gateway, "v1.0.0", {"remote_uri": None})
    event = await submitted_event(gateway, job_on("v1.0.0"))
    assert event.dataset_id is not None
    assert event.dataset_version is None
