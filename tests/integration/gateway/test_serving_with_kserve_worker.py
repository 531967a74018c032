"""The gateway's serving API and the serving worker together, on a (test double) cluster.

The real gateway app and the real serving worker (KServe backend, the real `kubernetes`
client) share Redis under the test's stream namespace; the Kubernetes API test server plays
the cluster and, through `set_status`, the KServe controller. What a user sees through the API
follows what happens to the InferenceService.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from llmops_serving.adapters.kserve import KServeBackend
from llmops_serving.app import serve

from integration.gateway.harness import API, Gateway, auth, serving_request
from integration.serving.helpers import ISVC, worker_settings
from support.k8s_server import KubeApiServer
from support.streams import wait_until

pytestmark = pytest.mark.integration

NAMESPACE = "llm-ops-dev"


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer() as server:
        yield server


@pytest.fixture
async def serving_worker(
    gateway: Gateway, kube: KubeApiServer, redis_url: str
) -> AsyncIterator[None]:
    """The serving worker on the gateway's stream namespace, applying to the test cluster."""
    settings = worker_settings(redis_url, gateway.namespace, serving_backend="kserve")
    backend = KServeBackend(kube.api_client(), request_timeout_s=5)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop, backend=backend))
    yield
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def deployment_view(gateway: Gateway, endpoint_id: str) -> dict[str, Any] | None:
    response = await gateway.client.get(f"{API}/serving/endpoints/{endpoint_id}/deployment")
    return response.json() if response.status_code == 200 else None


@pytest.mark.usefixtures("serving_worker")
async def test_the_api_follows_the_inference_service_from_apply_to_ready_failed_and_gone(
    gateway: Gateway, kube: KubeApiServer
) -> None:
    model = await gateway.register_trained_model()
    created = await gateway.create_endpoint(serving_request(model["id"]))
    assert created.status_code == 202, created.text
    endpoint = created.json()
    name = endpoint["name"]

    async def applied() -> bool:
        return kube.get(*ISVC, NAMESPACE, name) is not None

    await wait_until(applied, timeout_s=15)
    isvc = kube.get(*ISVC, NAMESPACE, name)
    assert isvc is not None
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10

    kube.set_status(*ISVC, NAMESPACE, name, {
        "url": f"http://{name}.llm-ops-dev.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        "components": {"predictor": {"traffic": [
            {"revisionName": f"{name}-predictor-00002", "percent": 10, "latestRevision": True},
            {"revisionName": f"{name}-predictor-00001", "percent": 90, "latestRevision": False},
        ]}},
    })  # fmt: skip

    async def ready() -> bool:
        view = await deployment_view(gateway, endpoint["id"])
        return view is not None and view["status"] == "Ready"

    await wait_until(ready, timeout_s=15)
    view = await deployment_view(gateway, endpoint["id"])
    assert view is not None
    assert view["url"] == f"http://{name}.llm-ops-dev.example.com"
    assert sorted(t["percent"] for t in view["traffic"]) == [10, 90]
    assert view["manifest"]["metadata"]["name"] == name

    kube.set_status(*ISVC, NAMESPACE, name, {
        "conditions": [{"type": "Ready", "status": "False", "reason": "RevisionFailed",
                        "message": "container exited: CUDA out of memory"}],
    })  # fmt: skip

    async def failed() -> bool:
        view = await deployment_view(gateway, endpoint["id"])
        return view is not None and view["status"] == "Failed"

    await wait_until(failed, timeout_s=15)
    view = await deployment_view(gateway, endpoint["id"])
    assert view is not None
    assert "CUDA out of memory" in (view["reason"] or "")

    deleted = await gateway.client.delete(
        f"{API}/serving/endpoints/{endpoint['id']}", headers=auth()
    )
    assert deleted.status_code == 202

    async def gone() -> bool:
        response = await gateway.client.get(f"{API}/serving/endpoints/{endpoint['id']}")
        return response.status_code == 404

    await wait_until(gone, timeout_s=15)
    assert kube.get(*ISVC, NAMESPACE, name) is None
