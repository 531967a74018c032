"""The chain's Git link in the read model: a job pinned to its dataset version at submission,
its pipeline registering a model version, and github-sync's report of that version's values
file folded and served at ``/catalog/model-versions`` with the job that registered it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmops_gateway.db.models import TrainingJob
from llmops_shared.events import Phase, StatusEntity, new_seq, status_updated

from integration.gateway.harness import API, Gateway, auth
from integration.gateway.test_datasets_api import (
    V1_FILES,
    create_dataset,
    sft_job,
    succeeded_version,
)

pytestmark = pytest.mark.integration

VERSIONS = f"{API}/catalog/model-versions"
COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


async def _synced(gateway: Gateway, name: str, version: str, phase: Phase, **details: Any) -> None:
    before = gateway.count("processed_events")
    await gateway.publish_status(
        status_updated(
            StatusEntity.MODEL_VERSION,
            entity_id=f"{name}/{version}",
            phase=phase,
            reporter="github-sync",
            reason=details.pop("reason", None),
            details=details,
            seq=new_seq(),
        )
    )
    await gateway.wait_processed(before + 1)


async def test_a_trained_version_shows_its_values_commit_and_its_job(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    await gateway.register_base_model()
    dataset = await create_dataset(gateway)
    version = await succeeded_version(gateway, dataset["id"], "v1.1.0", V1_FILES)
    submitted = await gateway.submit(sft_job("v1.1.0"))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    with gateway.state.sessions() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        assert job.dataset_version_id == version["id"]  # the lineage's first link
    await gateway.report_trained(job_id)
    name = gateway.artifact_of(job_id)

    missing = await gateway.client.get(f"{VERSIONS}/{name}/1")
    assert missing.status_code == 404
    await _synced(gateway, name, "1", Phase.SUCCEEDED, path="values/run.yaml", action="created",
                  commit=COMMIT, backend="git", pull_request=None, max_model_len=4096,
                  capped=False)  # fmt: skip
    read = await gateway.client.get(f"{VERSIONS}/{name}/1")
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["status"], body["commit"], body["path"], body["backend"]) == (
        "Succeeded", COMMIT, "values/run.yaml", "git",
    )  # fmt: skip
    assert (body["trainingJobId"], body["runId"]) == (job_id, "5d2c7e1f0a9b4c3d8e7f6a5b4c3d2e1f")

    await _synced(gateway, name, "1", Phase.FAILED, reason="GitHub 502")
    again = (await gateway.client.get(f"{VERSIONS}/{name}/1")).json()
    assert (again["status"], again["reason"], again["commit"]) == ("Failed", "GitHub 502", COMMIT)

    await _synced(gateway, "by-hand", "7", Phase.SUCCEEDED, path=None, action="skipped")
    listed = (await gateway.client.get(VERSIONS, params={"name": "by-hand"})).json()["items"]
    assert [(v["name"], v["version"], v["trainingJobId"]) for v in listed] == [
        ("by-hand", "7", None)
    ]
    everything = (await gateway.client.get(VERSIONS, headers=auth())).json()["items"]
    assert {v["name"] for v in everything} == {name, "by-hand"}
