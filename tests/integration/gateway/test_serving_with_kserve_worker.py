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
from llmops_serving.handlers import handle_serving_event
from llmops_shared.events import DeploymentDeleted, Stream, decode_event
from llmops_shared.kube.watcher import NoCache
from llmops_shared.streams import EVENT_FIELD
from llmops_shared.streams.commit import idempotency_key

from integration.gateway.harness import API, Gateway, auth, serving_request
from integration.serving.helpers import (
    ISVC,
    RecordingSink,
    make_ports,
    new_endpoint,
    received,
    requested,
    worker_settings,
)
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


async def _replay(gateway: Gateway, event_id: str) -> None:
    """Put the serving event ``event_id`` back on the stream as it was, once the worker's
    idempotency window for it has passed (its key is dropped here, as ``IDEMPOTENCY_TTL_S``
    does after 7 days; a dead-letter replay or a consumer group recreated at ``0`` re-reads an
    old event the same way). Returns once the worker has handled it."""
    stream = f"{gateway.namespace}{Stream.SERVING}"
    [raw] = [
        fields[EVENT_FIELD]
        for _, fields in await gateway.redis.xrange(stream)
        if decode_event(fields[EVENT_FIELD]).id == event_id
    ]
    key = idempotency_key("serving", event_id, gateway.namespace)
    assert await gateway.redis.delete(key) == 1
    await gateway.redis.xadd(stream, {EVENT_FIELD: raw})

    async def handled() -> bool:
        return bool(await gateway.redis.exists(key))

    await wait_until(handled, timeout_s=15)


@pytest.mark.usefixtures("serving_worker")
async def test_a_replayed_request_of_a_deleted_endpoint_brings_nothing_back(
    gateway: Gateway, kube: KubeApiServer
) -> None:
    """Issue 19, gap 1: an endpoint created, deleted to the end (its record removed), then its
    original DeploymentRequested replayed: no InferenceService exists afterwards, and none was
    ever applied (the worker refuses a tombstoned endpoint)."""
    model = await gateway.register_trained_model()
    created = await gateway.create_endpoint(serving_request(model["id"]))
    assert created.status_code == 202, created.text
    endpoint = created.json()
    name = endpoint["name"]

    async def applied() -> bool:
        return kube.get(*ISVC, NAMESPACE, name) is not None

    await wait_until(applied, timeout_s=15)
    kube.set_status(*ISVC, NAMESPACE, name, {"conditions": [{"type": "Ready", "status": "True"}]})
    url = f"{API}/serving/endpoints/{endpoint['id']}"
    assert (await gateway.client.delete(url, headers=auth())).status_code == 202

    async def gone() -> bool:
        return (await gateway.client.get(url)).status_code == 404

    await wait_until(gone, timeout_s=15)
    assert kube.get(*ISVC, NAMESPACE, name) is None

    request_event = (await gateway.serving_events())[0]
    assert request_event.type == "llmops.serving.deployment.requested.v1"
    applies_before = _applies(kube, name)
    await _replay(gateway, request_event.id)
    await asyncio.sleep(0.5)  # a few watcher rounds and relay passes: nothing may come back
    assert kube.get(*ISVC, NAMESPACE, name) is None
    assert _applies(kube, name) == applies_before  # not created and removed: never applied
    assert (await gateway.client.get(url)).status_code == 404
    assert gateway.count("serving_deployments") == 0


@pytest.mark.usefixtures("serving_worker")
async def test_a_stray_inference_service_of_an_unknown_endpoint_is_removed(
    gateway: Gateway, kube: KubeApiServer
) -> None:
    """An InferenceService the gateway holds no endpoint for (a worker that did not know the
    endpoint's tombstone, e.g. an older version during an upgrade, applied a replayed request):
    the watcher reports it, the gateway answers with its delete, the worker removes it."""
    stray_id, name = new_endpoint()
    older_worker = make_ports(
        KServeBackend(kube.api_client(), request_timeout_s=5), RecordingSink(), NoCache()
    )
    await handle_serving_event(received(requested(stray_id, name)), older_worker)
    assert kube.get(*ISVC, NAMESPACE, name) is not None

    async def removed() -> bool:
        return kube.get(*ISVC, NAMESPACE, name) is None

    await wait_until(removed, timeout_s=15)
    [answer] = [e for e in await gateway.serving_events() if e.envelope.subject == stray_id]
    assert answer.payload_as(DeploymentDeleted) == DeploymentDeleted(
        endpoint_id=stray_id, name=name, environment="dev"
    )


def _applies(kube: KubeApiServer, name: str) -> int:
    """Server-side applies of the InferenceService ``name`` so far."""
    return sum(
        1
        for method, path, _ in kube.requests
        if method == "PATCH" and f"/inferenceservices/{name}" in path
    )
