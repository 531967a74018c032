"""The lineage of the loop as the gateway records it from the workers' reports: a dataset
version trains a job, whose pipeline registers a model version, which github-sync writes to Git
and an endpoint serves. One call answers "which endpoints serve a model trained on this
version?" (down) and "which data trained what this endpoint serves?" (up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmops_shared.events import Phase, StatusEntity, new_seq, status_updated

from integration.gateway.harness import API, Gateway, auth, serving_request
from integration.gateway.test_datasets_api import (
    V1_FILES,
    create_dataset,
    sft_job,
    succeeded_version,
)

pytestmark = pytest.mark.integration

COMMIT = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


async def _the_loop(gateway: Gateway) -> dict[str, str]:
    """Dataset version -> job -> registered model version -> values commit -> dev endpoint."""
    await gateway.register_base_model()
    dataset = await create_dataset(gateway)
    version = await succeeded_version(gateway, dataset["id"], "v1.1.0", V1_FILES)
    job_id = (await gateway.submit(sft_job("v1.1.0"))).json()["id"]
    await gateway.report_trained(job_id)
    name = gateway.artifact_of(job_id)
    before = gateway.count("processed_events")
    await gateway.publish_status(status_updated(
        StatusEntity.MODEL_VERSION, entity_id=f"{name}/1", phase=Phase.SUCCEEDED,
        reporter="github-sync", seq=new_seq(),
        details={"path": "values/run.yaml", "action": "created", "commit": COMMIT,
                 "backend": "git"},
    ))  # fmt: skip
    await gateway.wait_processed(before + 1)
    model = await gateway.register_trained_model()
    endpoint = await gateway.create_endpoint(serving_request(model["id"]))
    assert endpoint.status_code == 202, endpoint.text
    return {"version": version["id"], "job": job_id, "model_version": f"{name}/1",
            "endpoint": endpoint.json()["id"]}  # fmt: skip


def _keys(graph: dict[str, Any]) -> set[str]:
    return {node["key"] for node in graph["nodes"]}


async def _lineage(gateway: Gateway, path: str, **params: Any) -> dict[str, Any]:
    response = await gateway.client.get(f"{API}/lineage/{path}", params=params)
    assert response.status_code == 200, response.text
    graph: dict[str, Any] = response.json()
    return graph


async def test_down_from_a_dataset_version_reaches_the_endpoint_and_back_up(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    ids = await _the_loop(gateway)

    down = await _lineage(gateway, f"dataset-version/{ids['version']}", direction="down")
    assert down["root"] == f"dataset-version:{ids['version']}"
    assert {
        f"training-job:{ids['job']}",
        f"model-version:{ids['model_version']}",
        f"values-commit:{COMMIT}",
        f"endpoint:{ids['endpoint']}",
    } <= _keys(down)
    relations = {(e["source"].split(":")[0], e["relation"], e["target"].split(":")[0])
                 for e in down["edges"]}  # fmt: skip
    assert {
        ("dataset-version", "trained", "training-job"),
        ("training-job", "registered", "model-version"),
        ("model-version", "synced", "values-commit"),
        ("model-version", "served", "endpoint"),
    } <= relations
    [endpoint] = [n for n in down["nodes"] if n["kind"] == "endpoint"]
    assert endpoint["environment"] == "dev"

    up = await _lineage(gateway, f"endpoint/{ids['endpoint']}", direction="up")
    assert f"dataset-version:{ids['version']}" in _keys(up)
    assert f"values-commit:{COMMIT}" not in _keys(up)  # a sibling, not an ancestor

    one_hop = await _lineage(gateway, f"model-version/{ids['model_version']}", depth=1)
    assert _keys(one_hop) == {
        f"model-version:{ids['model_version']}",
        f"training-job:{ids['job']}",
        f"values-commit:{COMMIT}",
        f"endpoint:{ids['endpoint']}",
    }
    by_commit = await _lineage(gateway, f"values-commit/{COMMIT}", direction="up")
    assert f"dataset-version:{ids['version']}" in _keys(by_commit)


async def test_endpoints_the_caller_may_not_view_are_left_out(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    ids = await _the_loop(gateway)
    made = await gateway.client.post(
        f"{API}/keys", json={"name": "stg-viewer", "roles": {"stg": "viewer"}}
    )
    viewer = auth(made.json()["key"])
    response = await gateway.client.get(
        f"{API}/lineage/dataset-version/{ids['version']}", headers=viewer
    )
    assert response.status_code == 200
    assert not [n for n in response.json()["nodes"] if n["kind"] == "endpoint"]
    hidden = await gateway.client.get(f"{API}/lineage/endpoint/{ids['endpoint']}", headers=viewer)
    assert hidden.status_code == 404
    unknown = await gateway.client.get(f"{API}/lineage/training-job/nope")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no training-job 'nope' in the lineage"
    bad_kind = await gateway.client.get(f"{API}/lineage/cluster/x")
    assert bad_kind.status_code == 422


async def test_the_cli_prints_the_chain_as_a_tree(start_gateway: Callable[..., Any]) -> None:
    from integration.gateway.test_keys_and_audit_cli import llmops, parsed
    from integration.gateway.test_models_cli import served

    gateway: Gateway = await start_gateway(training_requires_dataset_version=True)
    ids = await _the_loop(gateway)
    with served(gateway) as url:
        tree = llmops(url, "lineage", "model-version", ids["model_version"])
        graph = parsed(llmops(url, "lineage", "endpoint", ids["endpoint"], "--json",
                              "--direction", "up"))  # fmt: skip
        missing = llmops(url, "lineage", "training-job", "nope")
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    assert lines[0] == "came from"
    assert any("registered: training-job" in line for line in lines)
    assert any("trained: dataset-version enterprise-instruction@v1.1.0" in line for line in lines)
    assert any("synced: values-commit 4b825dc642cb values/run.yaml" in line for line in lines)
    assert any("served: endpoint test-model (dev)" in line for line in lines)
    assert f"dataset-version:{ids['version']}" in _keys(graph)
    assert missing.exit_code == 1
    assert "no training-job 'nope' in the lineage" in missing.output
