"""The KServe backend and the handlers on the real ``kubernetes`` client, against the
Kubernetes API test double (tests/support/k8s_server.py): apply, status via the watcher,
promote, rollback, delete, and the error classification."""

from __future__ import annotations

import pytest

from llmops_serving.adapters.kserve import KServeBackend
from llmops_serving.config import DeploymentMode
from llmops_serving.handlers import handle_serving_event
from llmops_serving.ports import ServingRejected, ServingUnavailable
from llmops_serving.render.rollout import RolloutRefused
from llmops_serving.watcher import Watcher
from llmops_shared.events import Phase
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError

from integration.serving.helpers import (
    ISVC,
    RecordingSink,
    deleted,
    formats,
    make_ports,
    new_endpoint,
    promoted,
    received,
    requested,
    rolled_back,
    statuses_of,
)
from support.k8s_server import KubeApiServer
from support.kserve_crd import schema_errors
from support.streams import details_of

pytestmark = pytest.mark.integration

NS = "llm-ops-dev"
READY = {
    "url": "http://ep.llm-ops-dev.example.com",
    "conditions": [{"type": "Ready", "status": "True"}],
    "components": {
        "predictor": {
            "traffic": [
                {"revisionName": "ep-predictor-00002", "percent": 10, "latestRevision": True},
                {
                    "revisionName": "ep-predictor-00001",
                    "percent": 90,
                    "latestRevision": False,
                    "tag": "prev",
                },
            ]
        }
    },
}


def _setup(kserve: KServeBackend, mode: DeploymentMode = DeploymentMode.SERVERLESS):  # type: ignore[no-untyped-def]
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    return sink, watcher, make_ports(kserve, sink, watcher, mode=mode)


async def test_apply_twice_is_one_object_with_one_generation(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, _, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    event = requested(endpoint_id, name)
    [first] = statuses_of(await handle_serving_event(received(event), ports))
    obj = kube.get(*ISVC, NS, name)
    assert obj is not None
    generation = obj["metadata"]["generation"]
    again = received(requested(endpoint_id, name))  # a new request with the same content
    [second] = statuses_of(await handle_serving_event(again, ports))
    assert await handle_serving_event(again, ports) == []  # its redelivery: nothing to do
    assert len(kube.list(*ISVC, NS)) == 1
    assert kube.get(*ISVC, NS, name)["metadata"]["generation"] == generation  # type: ignore[index]
    assert first.phase is second.phase is Phase.PENDING
    assert first.entity_id == endpoint_id
    applies = [r for r in kube.requests if r[0] == "PATCH" and name in r[1]]
    assert len(applies) == 2
    for _method, path, content_type in applies:
        assert content_type == "application/apply-patch+yaml"
        assert "fieldManager=llm-ops-serving" in path
        assert "force=true" in path
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 10
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert managers == {"llm-ops-serving"}
    details = details_of(first)
    assert set(details) == {
        "name", "namespace", "backend", "deployment_mode", "manifest",
        "url", "conditions", "traffic", "rollout",
    }  # fmt: skip
    assert details["backend"] == "kserve"
    assert details["deployment_mode"] == "Serverless"
    assert details["rollout"] == {"strategy": "canary", "canary_percent": 10}
    assert schema_errors(details["manifest"]) == []  # type: ignore[arg-type]
    assert sink.envelopes == []


async def test_watcher_reports_ready_and_failed_once_each(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, watcher, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name)), ports)
    assert await watcher.poll_once() == 1  # first sight: Pending
    assert await watcher.poll_once() == 0  # unchanged: nothing
    kube.set_status(*ISVC, NS, name, READY)
    assert await watcher.poll_once() == 1
    ready = sink.statuses()[-1]
    assert ready.phase is Phase.READY
    assert ready.entity_id == endpoint_id
    assert details_of(ready)["url"] == READY["url"]
    assert details_of(ready)["traffic"] == [
        {"revision": "ep-predictor-00002", "percent": 10, "latest": True},
        {"revision": "ep-predictor-00001", "percent": 90, "latest": False, "tag": "prev"},
    ]
    assert received(sink.envelopes[-1]).envelope.correlationid == "req-serving-test"
    failed_status = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "OOM"}
        ]
    }
    kube.set_status(*ISVC, NS, name, failed_status)
    assert await watcher.poll_once() == 1
    failed = sink.statuses()[-1]
    assert (failed.phase, failed.reason) == (Phase.FAILED, "RevisionFailed: OOM")
    assert await watcher.poll_once() == 0


async def test_a_reapply_of_a_ready_object_is_reported_ready_again(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, watcher, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name)), ports)
    kube.set_status(*ISVC, NS, name, READY)
    await watcher.poll_once()
    [pending] = statuses_of(
        await handle_serving_event(received(promoted(endpoint_id, name)), ports)
    )
    assert pending.phase is Phase.PENDING
    assert await watcher.poll_once() == 1  # the handler made it forget: Ready is reported again
    assert sink.statuses()[-1].seq > pending.seq


async def test_promote_removes_the_canary_and_rollback_pins_previous(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    _, _, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name)), ports)
    [report] = statuses_of(await handle_serving_event(received(promoted(endpoint_id, name)), ports))
    predictor = kube.get(*ISVC, NS, name)["spec"]["predictor"]  # type: ignore[index]
    assert "canaryTrafficPercent" not in predictor  # the apply removed the field we dropped
    assert details_of(report)["rollout"] == {"strategy": "canary", "canary_percent": None}

    other_id, other = new_endpoint()
    await handle_serving_event(received(requested(other_id, other)), ports)
    await handle_serving_event(received(rolled_back(other_id, other)), ports)
    obj = kube.get(*ISVC, NS, other)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0  # type: ignore[index]
    assert obj["metadata"]["annotations"]["llm-ops.io/rollout-state"] == "rolled-back"  # type: ignore[index]


async def test_late_or_repeated_rollout_events_change_nothing(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    """Redelivered or replayed events must not undo what happened since (review finding)."""
    _, _, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    request = received(requested(endpoint_id, name))
    await handle_serving_event(request, ports)
    await handle_serving_event(received(promoted(endpoint_id, name)), ports)
    assert await handle_serving_event(request, ports) == []  # the request, redelivered
    assert "canaryTrafficPercent" not in kube.get(*ISVC, NS, name)["spec"]["predictor"]  # type: ignore[index]
    assert await handle_serving_event(received(rolled_back(endpoint_id, name)), ports) == []
    assert "canaryTrafficPercent" not in kube.get(*ISVC, NS, name)["spec"]["predictor"]  # type: ignore[index]

    rolled_id, rolled = new_endpoint()
    await handle_serving_event(received(requested(rolled_id, rolled)), ports)
    await handle_serving_event(received(rolled_back(rolled_id, rolled)), ports)
    assert await handle_serving_event(received(promoted(rolled_id, rolled)), ports) == []
    assert kube.get(*ISVC, NS, rolled)["spec"]["predictor"]["canaryTrafficPercent"] == 0  # type: ignore[index]


async def test_an_object_of_another_endpoint_is_never_taken_over_or_deleted(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    _, _, ports = _setup(kserve)
    old_id, name = new_endpoint()
    new_id = new_endpoint()[0]
    await handle_serving_event(received(requested(new_id, name)), ports)  # the name's new owner
    with pytest.raises(NonRetryableError, match=f"belongs to endpoint {new_id}"):
        await handle_serving_event(received(requested(old_id, name)), ports)  # a replay
    [gone] = statuses_of(await handle_serving_event(received(deleted(old_id, name)), ports))
    assert gone.phase is Phase.DELETED
    assert gone.entity_id == old_id
    obj = kube.get(*ISVC, NS, name)
    assert obj is not None  # the new owner's object survived the old endpoint's late delete
    assert obj["metadata"]["labels"]["llm-ops.io/endpoint-id"] == new_id


async def test_standard_mode_canary_uses_spec_canary(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    _, _, ports = _setup(kserve, DeploymentMode.STANDARD)
    endpoint_id, name = new_endpoint()
    first = requested(endpoint_id, name, rollout={"strategy": "blue-green"})
    await handle_serving_event(received(first), ports)
    await handle_serving_event(received(requested(endpoint_id, name, use_gpu=False)), ports)
    obj = kube.get(*ISVC, NS, name)
    assert obj is not None
    [canary] = obj["spec"]["canary"]
    assert canary["trafficPercent"] == 10
    assert "nvidia.com/gpu" in str(obj["spec"]["predictor"])
    assert "nvidia.com/gpu" not in str(canary)
    await handle_serving_event(received(promoted(endpoint_id, name)), ports)
    obj = kube.get(*ISVC, NS, name)
    assert "canary" not in obj["spec"]  # type: ignore[index]
    assert obj["spec"]["predictor"]["name"] == canary["predictor"]["name"]  # type: ignore[index]


async def test_canary_in_raw_deployment_is_reported_failed_and_dead_lettered(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, _, ports = _setup(kserve, DeploymentMode.RAW_DEPLOYMENT)
    endpoint_id, name = new_endpoint()
    with pytest.raises(RolloutRefused, match="RawDeployment ignores canaryTrafficPercent"):
        await handle_serving_event(received(requested(endpoint_id, name)), ports)
    [failed] = sink.statuses()
    assert failed.phase is Phase.FAILED
    assert "RawDeployment" in (failed.reason or "")
    assert kube.list(*ISVC, NS) == []
    assert not any(r[0] == "PATCH" for r in kube.requests)


async def test_delete_reports_deleted_and_a_missing_object_counts_as_gone(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, watcher, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name)), ports)
    await watcher.poll_once()
    [gone] = statuses_of(await handle_serving_event(received(deleted(endpoint_id, name)), ports))
    assert gone.phase is Phase.DELETED
    assert kube.get(*ISVC, NS, name) is None
    [again] = statuses_of(await handle_serving_event(received(deleted(endpoint_id, name)), ports))
    assert again.phase is Phase.DELETED
    await watcher.poll_once()  # the watcher saw it before: it reports the disappearance too
    assert sink.statuses()[-1].phase is Phase.DELETED


async def test_server_errors_are_outages_and_4xx_are_rejections(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink, watcher, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    kube.fail_next("PATCH", f"/inferenceservices/{name}", 500)
    with pytest.raises(DependencyUnavailableError):
        await handle_serving_event(received(requested(endpoint_id, name)), ports)
    assert sink.envelopes == []  # an outage reports nothing: the entry just waits
    kube.fail_next("PATCH", f"/inferenceservices/{name}", 422, reason="Invalid")
    with pytest.raises(ServingRejected, match="rejected"):
        await handle_serving_event(received(requested(endpoint_id, name)), ports)
    assert sink.statuses()[-1].phase is Phase.FAILED
    kube.fail_next("DELETE", f"/inferenceservices/{name}", 403, reason="Forbidden")
    with pytest.raises(ServingUnavailable):
        await handle_serving_event(received(deleted(endpoint_id, name)), ports)
    kube.fail_next("DELETE", f"/inferenceservices/{name}", 409, reason="Conflict")
    with pytest.raises(ServingRejected):
        await handle_serving_event(received(deleted(endpoint_id, name)), ports)
    failed = sink.statuses()[-1]
    assert failed.phase is Phase.FAILED
    assert "Conflict" in (failed.reason or "")
    kube.fail_next("GET", "/inferenceservices", 503)
    with pytest.raises(ServingUnavailable):
        await watcher.poll_once()


async def test_unreachable_cluster_is_an_outage(kserve: KServeBackend, kube: KubeApiServer) -> None:
    kube.stop()
    with pytest.raises(ServingUnavailable, match="unreachable"):
        await kserve.ping()


@pytest.mark.parametrize("replayed", ["requested", "promoted", "rolled_back"])
async def test_a_deleted_endpoint_is_never_deployed_again(
    kube: KubeApiServer, kserve: KServeBackend, replayed: str
) -> None:
    """Issue 19, gap 1: once its delete was handled, an endpoint is a tombstone: a replayed
    request (or promote, rollback) applies nothing and reports the endpoint Deleted again,
    without dead-lettering anything (nothing is wrong: the endpoint is gone)."""
    _, watcher, ports = _setup(kserve)
    endpoint_id, name = new_endpoint()
    request = requested(endpoint_id, name)
    await handle_serving_event(received(request), ports)
    await watcher.poll_once()
    await handle_serving_event(received(deleted(endpoint_id, name)), ports)
    assert kube.get(*ISVC, NS, name) is None
    applies = [r for r in kube.requests if r[0] == "PATCH"]

    replay = {
        "requested": request,
        "promoted": promoted(endpoint_id, name),
        "rolled_back": rolled_back(endpoint_id, name),
    }[replayed]
    [answer] = statuses_of(await handle_serving_event(received(replay), ports))
    assert answer.phase is Phase.DELETED
    assert answer.entity_id == endpoint_id
    assert "was deleted" in (answer.reason or "")
    assert details_of(answer)["manifest"] is None
    assert kube.get(*ISVC, NS, name) is None
    assert [r for r in kube.requests if r[0] == "PATCH"] == applies
    await watcher.poll_once()
    assert kube.get(*ISVC, NS, name) is None
