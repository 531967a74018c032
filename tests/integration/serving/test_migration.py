"""``DeploymentMigrationRequested``: moving an endpoint between the built-in Deployment + Service
and a KServe InferenceService, with the real ``kubernetes`` client against the Kubernetes API
test double (tests/support/k8s_server.py), and on real files for the manifests backend."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

import pytest
from kubernetes.client import CoreV1Api

from llmops_serving.adapters.deployment import DeploymentBackend
from llmops_serving.adapters.kserve import KServeBackend
from llmops_serving.adapters.kube import call, remove_owned
from llmops_serving.adapters.manifests import ManifestsBackend
from llmops_serving.config import RenderFormat
from llmops_serving.handlers import handle_serving_event
from llmops_serving.watcher import Watcher
from llmops_shared.events import DeploymentMigrationRequested, Envelope, Phase, new_event
from llmops_shared.kube.watcher import NoCache
from llmops_shared.manifest_files import load_documents
from llmops_shared.streams import NonRetryableError

from integration.serving.helpers import (
    CORRELATION_ID,
    ISVC,
    RecordingSink,
    deleted,
    formats,
    make_ports,
    new_endpoint,
    promoted,
    received,
    requested,
    statuses_of,
)
from support.k8s_server import KubeApiServer
from support.kserve_crd import schema_errors
from support.kube_objects import AVAILABLE, DEPLOYMENT, NS, SERVICE, kserve_service
from support.streams import details_of

pytestmark = pytest.mark.integration

BLUE_GREEN = {"strategy": "blue-green"}
ISVC_READY = {
    "url": "http://ep.llm-ops-dev.example.com",
    "conditions": [{"type": "Ready", "status": "True"}],
}


def migration(
    endpoint_id: str, name: str, target: Literal["kserve", "builtin"], **spec_changes: Any
) -> Envelope:
    """What the gateway's scripts queue: the endpoint's request plus the target format, and the
    artifact its current objects serve."""
    request = requested(endpoint_id, name, **spec_changes).data
    payload = DeploymentMigrationRequested.model_validate(
        {
            **request,
            "storage_uri": "s3://llm-models/llama-3-8b-sft-v1",
            "mlflow_run_id": None,
            "target": target,
        }
    )
    return new_event(
        payload,
        source="gateway",
        correlation_id=CORRELATION_ID,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{endpoint_id}:{target}")),
    )


def builtin_objects(kube: KubeApiServer, name: str) -> tuple[Any, Any]:
    return kube.get(*DEPLOYMENT, NS, name), kube.get(*SERVICE, NS, name)


async def apply_foreign_deployment(kube: KubeApiServer, name: str) -> None:
    """A Deployment named like the endpoint that someone else created (no llm-ops labels)."""
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "search"}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {}},
    }
    await DeploymentBackend(kube.api_client()).apply(foreign)


async def deploy_builtin(deployments: DeploymentBackend, endpoint_id: str, name: str) -> None:
    ports = make_ports(deployments, RecordingSink(), NoCache(), builtin=True)
    event = requested(endpoint_id, name, rollout=BLUE_GREEN)
    await handle_serving_event(received(event), ports)


async def test_builtin_to_kserve_removes_the_builtin_objects_only_once_the_isvc_is_ready(
    kube: KubeApiServer, deployments: DeploymentBackend, kserve: KServeBackend
) -> None:
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    assert all(builtin_objects(kube, name))
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(kserve, sink, watcher)
    event = received(migration(endpoint_id, name, "kserve", rollout=BLUE_GREEN))

    [moved] = statuses_of(await handle_serving_event(event, ports))

    isvc = kube.get(*ISVC, NS, name)
    assert isvc is not None
    assert schema_errors(isvc) == []
    assert isvc["metadata"]["labels"]["llm-ops.io/endpoint-id"] == endpoint_id
    assert isvc["metadata"]["annotations"]["llm-ops.io/migrating-from"] == "builtin"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://llm-models/llama-3-8b-sft-v1"
    assert all(builtin_objects(kube, name))  # still serving: the new one is not Ready yet
    assert moved.phase is Phase.PENDING
    assert moved.entity_id == endpoint_id
    assert details_of(moved)["backend"] == "kserve"
    assert details_of(moved)["deployment_mode"] == "Serverless"
    assert details_of(moved)["manifest"]["kind"] == "InferenceService"  # type: ignore[index,call-overload]
    assert details_of(moved)["migration"]["outcome"] == "in_progress"  # type: ignore[index,call-overload]
    assert (moved.reason or "").startswith("migrating to a KServe InferenceService")
    assert not any(m == "DELETE" for m, _, _ in kube.requests)

    generation = isvc["metadata"]["generation"]
    [again] = statuses_of(await handle_serving_event(event, ports))  # a redelivery
    assert kube.get(*ISVC, NS, name)["metadata"]["generation"] == generation  # type: ignore[index]
    assert again.phase is Phase.PENDING
    await watcher.poll_once()  # not Ready yet: nothing removed
    assert all(builtin_objects(kube, name))
    assert details_of(sink.statuses()[-1])["migration"]["outcome"] == "in_progress"

    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await watcher.poll_once()
    done = sink.statuses()[-1]
    assert done.phase is Phase.READY
    assert details_of(done)["migration"]["outcome"] == "migrated"  # type: ignore[index,call-overload]
    assert f"removed Service {NS}/{name}, Deployment {NS}/{name}" in (done.reason or "")
    assert builtin_objects(kube, name) == (None, None)
    final = kube.get(*ISVC, NS, name)
    assert final is not None
    assert "llm-ops.io/migrating-from" not in final["metadata"]["annotations"]
    assert final["metadata"]["generation"] == generation  # the mark went, the spec did not change
    reports = len(sink.envelopes)
    assert await watcher.poll_once() == 0  # nothing new to say
    assert await handle_serving_event(event, ports) == []  # a redelivery after the move
    assert len(sink.envelopes) == reports


async def test_a_new_object_that_never_becomes_ready_leaves_the_old_one_serving(
    kube: KubeApiServer, deployments: DeploymentBackend, kserve: KServeBackend
) -> None:
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(kserve, sink, watcher)
    await handle_serving_event(
        received(migration(endpoint_id, name, "kserve", rollout=BLUE_GREEN)), ports
    )
    kube.set_status(
        *ISVC,
        NS,
        name,
        {"conditions": [{"type": "Ready", "status": "False", "reason": "ImagePullBackOff"}]},
    )
    for _ in range(3):
        await watcher.poll_once()
    assert all(builtin_objects(kube, name))  # still serving
    assert all(s.phase is not Phase.FAILED for s in sink.statuses())
    last = sink.statuses()[-1]
    assert last.phase is Phase.PENDING
    assert details_of(last)["migration"]["outcome"] == "failed"  # type: ignore[index,call-overload]
    assert "keeps serving" in (last.reason or "")
    assert not any(m == "DELETE" for m, _, _ in kube.requests)


async def test_kserve_to_builtin_on_the_kserve_worker_reports_no_deleted_endpoint(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    """The KServe worker moves an endpoint to the built-in objects (a rollback processed before
    the worker switched backend): it finishes the move once the Deployment is Ready, and the
    removal of the InferenceService is not reported as the endpoint being Deleted."""
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(kserve, sink, watcher)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await watcher.poll_once()
    assert sink.statuses()[-1].phase is Phase.READY

    event = received(migration(endpoint_id, name, "builtin", rollout=BLUE_GREEN))
    [moved] = statuses_of(await handle_serving_event(event, ports))

    deployment, service = builtin_objects(kube, name)
    assert deployment is not None
    assert service is None  # held back until the InferenceService (and KServe's Service) go
    assert kube.get(*ISVC, NS, name) is not None
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llm-ops"
    assert moved.phase is Phase.PENDING
    assert details_of(moved)["backend"] == "deployment"
    assert details_of(moved)["deployment_mode"] is None
    assert details_of(moved)["manifest"]["kind"] == "List"  # type: ignore[index,call-overload]
    assert moved.seq > max(s.seq for s in sink.statuses())

    kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
    await watcher.poll_once()
    done = sink.statuses()[-1]
    assert done.phase is Phase.READY
    assert details_of(done)["backend"] == "deployment"
    assert f"removed InferenceService {NS}/{name}" in (done.reason or "")
    assert kube.get(*ISVC, NS, name) is None
    deployment, service = builtin_objects(kube, name)
    assert service is not None
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert "llm-ops.io/migrating-from" not in deployment["metadata"]["annotations"]
    assert deployment["metadata"]["generation"] == 1
    before = len(sink.envelopes)
    assert await watcher.poll_once() == 0  # no Deleted for the InferenceService it saw
    assert len(sink.envelopes) == before
    assert await handle_serving_event(event, ports) == []  # a redelivery


async def test_kserves_own_service_is_replaced_only_once_it_is_gone(
    kube: KubeApiServer, kserve: KServeBackend, deployments: DeploymentBackend
) -> None:
    """Serverless KServe creates ``Service/<isvc name>`` (ExternalName, owned by the
    InferenceService): it does not block the move, and the built-in Service is applied only
    after it has been garbage-collected."""
    endpoint_id, name = new_endpoint()
    on_kserve = make_ports(kserve, RecordingSink(), NoCache())
    await handle_serving_event(
        received(requested(endpoint_id, name, rollout=BLUE_GREEN)), on_kserve
    )
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    isvc = kube.get(*ISVC, NS, name)
    assert isvc is not None
    CoreV1Api(kube.api_client()).create_namespaced_service(NS, kserve_service(name, isvc))
    sink = RecordingSink()
    watcher = Watcher(formats(deployments), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(deployments, sink, watcher, builtin=True)

    await handle_serving_event(received(migration(endpoint_id, name, "builtin")), ports)
    kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
    await watcher.poll_once()
    waiting = sink.statuses()[-1]
    assert kube.get(*ISVC, NS, name) is None
    assert waiting.phase is Phase.PENDING
    assert f"waiting for Service {NS}/{name} (owned by InferenceService {name})" in (
        waiting.reason or ""
    )
    assert kube.get(*SERVICE, NS, name)["spec"]["type"] == "ExternalName"  # type: ignore[index]

    assert kube.collect_garbage() == [("services", NS, name)]
    await watcher.poll_once()
    ready = sink.statuses()[-1]
    assert ready.phase is Phase.READY
    assert details_of(ready)["migration"]["outcome"] == "migrated"  # type: ignore[index,call-overload]
    service = kube.get(*SERVICE, NS, name)
    assert service is not None
    assert service["spec"]["type"] == "ClusterIP"
    assert service["metadata"]["labels"]["llm-ops.io/endpoint-id"] == endpoint_id


async def test_a_service_of_the_name_that_is_not_the_endpoints_blocks_the_builtin_move(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    """A Service owned by another InferenceService (or by nobody) is not taken over: refused,
    and the endpoint keeps the phase it is observed in."""
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(kserve, sink, watcher)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await watcher.poll_once()
    stale = kserve_service(name, {"metadata": {"uid": "a-previous-inference-service"}})
    CoreV1Api(kube.api_client()).create_namespaced_service(NS, stale)

    with pytest.raises(NonRetryableError, match=f"Service {NS}/{name} \\(owned by Inference"):
        await handle_serving_event(received(migration(endpoint_id, name, "builtin")), ports)
    refused = sink.statuses()[-1]
    assert refused.phase is Phase.READY  # still serving on KServe
    assert details_of(refused)["migration"]["outcome"] == "failed"  # type: ignore[index,call-overload]
    assert details_of(refused)["manifest"]["kind"] == "InferenceService"  # type: ignore[index,call-overload]
    assert "that llm-ops did not create" in (refused.reason or "")
    assert kube.get(*DEPLOYMENT, NS, name) is None
    assert await watcher.poll_once() == 0  # the watcher has nothing new to say


async def test_a_second_replica_does_not_report_the_moved_endpoint_deleted(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    endpoint_id, name = new_endpoint()
    sink = RecordingSink()
    first = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    second = Watcher(
        formats(KServeBackend(kube.api_client(), request_timeout_s=5)),
        sink,
        namespaces=[NS],
        interval_s=0,
    )
    ports = make_ports(kserve, sink, first)
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await first.poll_once()
    await second.poll_once()
    await handle_serving_event(
        received(migration(endpoint_id, name, "builtin", rollout=BLUE_GREEN)), ports
    )
    kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
    await first.poll_once()  # finishes the move
    assert kube.get(*ISVC, NS, name) is None
    await second.poll_once()
    await first.poll_once()
    assert all(s.phase is not Phase.DELETED for s in sink.statuses())
    assert sink.statuses()[-1].phase is Phase.READY


async def test_a_request_in_the_other_format_removes_the_old_objects_once_ready(
    kube: KubeApiServer, deployments: DeploymentBackend, kserve: KServeBackend
) -> None:
    """A plain ``DeploymentRequested`` for an endpoint still on the built-in objects (deployed
    before the flag came on) moves it like a migration."""
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    sink = RecordingSink()
    watcher = Watcher(formats(kserve), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(kserve, sink, watcher)
    [applied] = statuses_of(
        await handle_serving_event(
            received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports
        )
    )
    assert details_of(applied)["migration"]["outcome"] == "in_progress"  # type: ignore[index,call-overload]
    await watcher.poll_once()
    assert all(builtin_objects(kube, name))
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await watcher.poll_once()
    assert builtin_objects(kube, name) == (None, None)
    assert sink.statuses()[-1].phase is Phase.READY


async def test_kserve_to_builtin_on_the_deployment_worker_becomes_ready(
    kube: KubeApiServer, kserve: KServeBackend, deployments: DeploymentBackend
) -> None:
    """The worker already runs the built-in backend (flag off): it still finds and removes the
    InferenceService, and its watcher reports the Deployment Ready."""
    endpoint_id, name = new_endpoint()
    on_kserve = make_ports(kserve, RecordingSink(), NoCache())
    await handle_serving_event(received(requested(endpoint_id, name)), on_kserve)  # a canary
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    await handle_serving_event(received(promoted(endpoint_id, name)), on_kserve)
    sink = RecordingSink()
    watcher = Watcher(formats(deployments), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(deployments, sink, watcher, builtin=True)

    [moved] = statuses_of(
        await handle_serving_event(received(migration(endpoint_id, name, "builtin")), ports)
    )

    assert kube.get(*ISVC, NS, name) is not None  # until the Deployment is Ready
    deployment = kube.get(*DEPLOYMENT, NS, name)
    assert deployment is not None
    # the promoted canary serves at 100 %: moved as a full switch
    annotations = deployment["metadata"]["annotations"]
    assert annotations["llm-ops.io/rollout-strategy"] == "blue-green"
    assert details_of(moved)["backend"] == "deployment"
    kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
    await watcher.poll_once()
    ready = sink.statuses()[-1]
    assert ready.phase is Phase.READY
    assert details_of(ready)["url"] == f"http://{name}.{NS}.svc.cluster.local"
    assert kube.get(*ISVC, NS, name) is None


async def test_to_kserve_with_the_framework_off_is_failed_with_the_reason(
    kube: KubeApiServer, deployments: DeploymentBackend
) -> None:
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    sink = RecordingSink()
    ports = make_ports(deployments, sink, NoCache(), builtin=True)
    event = received(migration(endpoint_id, name, "kserve", rollout=BLUE_GREEN))
    kube.set_status(*DEPLOYMENT, NS, name, AVAILABLE)
    with pytest.raises(NonRetryableError, match="enable the serving framework first"):
        await handle_serving_event(event, ports)
    [refused] = sink.statuses()
    assert refused.phase is Phase.READY  # refused, not Failed: it still serves where it was
    assert details_of(refused)["migration"]["outcome"] == "failed"  # type: ignore[index,call-overload]
    assert "SERVING_FRAMEWORK_ENABLED=false" in (refused.reason or "")
    assert all(builtin_objects(kube, name))  # still serving where it was
    assert kube.get(*ISVC, NS, name) is None


async def test_a_canary_in_progress_does_not_move_to_the_builtin_objects(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink = RecordingSink()
    ports = make_ports(kserve, sink, NoCache())
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name)), ports)  # 10 % canary
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    with pytest.raises(NonRetryableError, match="canary rollout is in progress"):
        await handle_serving_event(received(migration(endpoint_id, name, "builtin")), ports)
    assert sink.statuses()[-1].phase is Phase.READY  # the refusal keeps the observed phase
    assert kube.get(*ISVC, NS, name) is not None
    assert builtin_objects(kube, name) == (None, None)


async def test_objects_the_platform_did_not_create_are_left_alone(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    endpoint_id, name = new_endpoint()
    await apply_foreign_deployment(kube, name)
    ports = make_ports(kserve, RecordingSink(), NoCache())
    event = received(migration(endpoint_id, name, "kserve", rollout=BLUE_GREEN))
    [moved] = statuses_of(await handle_serving_event(event, ports))
    assert kube.get(*DEPLOYMENT, NS, name) is not None
    isvc = kube.get(*ISVC, NS, name)
    assert isvc is not None
    # nothing of this endpoint to move away from: applied without the migration mark
    assert "llm-ops.io/migrating-from" not in isvc["metadata"]["annotations"]
    assert (moved.reason or "").startswith("migrated to a KServe InferenceService")
    kube.set_status(*ISVC, NS, name, ISVC_READY)
    removal = await formats(kserve).remove_other_format(
        NS, name, keep=RenderFormat.KSERVE, endpoint_id=endpoint_id
    )
    assert removal.left == (f"Deployment {NS}/{name}",)
    assert not any(m == "DELETE" for m, _, _ in kube.requests)


async def test_a_target_object_the_platform_did_not_create_is_not_taken_over(
    kube: KubeApiServer, kserve: KServeBackend
) -> None:
    sink = RecordingSink()
    ports = make_ports(kserve, sink, NoCache())
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    await apply_foreign_deployment(kube, name)
    with pytest.raises(NonRetryableError, match="that llm-ops did not create"):
        await handle_serving_event(received(migration(endpoint_id, name, "builtin")), ports)
    assert sink.statuses()[-1].phase is Phase.PENDING  # as observed (no controller here)
    assert kube.get(*DEPLOYMENT, NS, name)["metadata"]["labels"] == {"team": "search"}  # type: ignore[index]
    assert kube.get(*ISVC, NS, name) is not None  # still serving where it was


async def test_an_object_replaced_after_the_check_is_checked_again(
    kube: KubeApiServer, deployments: DeploymentBackend
) -> None:
    """The delete carries the checked uid: an object replaced under the same name since it was
    read answers 409 and is read (and checked) again before anything is deleted."""
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    reads = 0

    async def read() -> dict[str, Any] | None:
        nonlocal reads
        reads += 1
        obj = kube.get(*SERVICE, NS, name)
        if obj is not None and reads == 1:  # what was read before someone replaced it
            obj["metadata"]["uid"] = "a-replaced-object"
        return obj

    async def delete(options: Any) -> object:
        return await call(
            "deleting", CoreV1Api(kube.api_client()).delete_namespaced_service, name, NS,
            body=options,
        )  # fmt: skip

    removal = await remove_owned(f"Service {NS}/{name}", read, delete, endpoint_id=endpoint_id)
    assert removal.deleted == (f"Service {NS}/{name}",)
    assert reads == 2
    deletes = [path for method, path, _ in kube.requests if method == "DELETE"]
    assert len(deletes) == 2  # the first was refused by its precondition
    assert kube.get(*SERVICE, NS, name) is None


async def test_deleting_an_endpoint_also_removes_its_objects_of_the_other_format(
    kube: KubeApiServer, deployments: DeploymentBackend, kserve: KServeBackend
) -> None:
    """An endpoint left on the built-in objects when the flag came back on is deleted by the
    KServe worker: nothing of it stays behind."""
    endpoint_id, name = new_endpoint()
    await deploy_builtin(deployments, endpoint_id, name)
    ports = make_ports(kserve, RecordingSink(), NoCache())
    [gone] = statuses_of(await handle_serving_event(received(deleted(endpoint_id, name)), ports))
    assert gone.phase is Phase.DELETED
    assert builtin_objects(kube, name) == (None, None)


async def test_manifests_backend_replaces_the_file_with_the_other_format(tmp_path: Path) -> None:
    backend = ManifestsBackend(tmp_path)
    endpoint_id, name = new_endpoint()
    path = tmp_path / NS / f"{name}.yaml"
    builtin_ports = make_ports(backend, RecordingSink(), NoCache(), builtin=True)
    await handle_serving_event(
        received(requested(endpoint_id, name, rollout=BLUE_GREEN)), builtin_ports
    )
    assert [d["kind"] for d in load_documents(path.read_text())] == ["Deployment", "Service"]

    sink = RecordingSink()
    ports = make_ports(backend, sink, NoCache())
    to_kserve = received(migration(endpoint_id, name, "kserve", rollout=BLUE_GREEN))
    [moved] = statuses_of(await handle_serving_event(to_kserve, ports))
    [isvc] = load_documents(path.read_text())
    assert isvc["kind"] == "InferenceService"
    assert schema_errors(isvc) == []
    assert moved.phase is Phase.READY
    assert details_of(moved)["backend"] == "manifests"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    mtime = path.stat().st_mtime_ns
    await handle_serving_event(to_kserve, ports)  # a redelivery: the same content
    assert path.stat().st_mtime_ns == mtime

    back = received(migration(endpoint_id, name, "builtin", rollout=BLUE_GREEN))
    await handle_serving_event(back, builtin_ports)  # built-in works in any mode
    assert [d["kind"] for d in load_documents(path.read_text())] == ["Deployment", "Service"]


async def test_a_deleted_endpoint_is_never_migrated(
    kube: KubeApiServer, deployments: DeploymentBackend, kserve: KServeBackend
) -> None:
    """A move queued before the endpoint's delete and handled after it (or replayed) creates
    nothing in either format."""
    endpoint_id, name = new_endpoint()
    ports = make_ports(kserve, RecordingSink(), NoCache())
    await handle_serving_event(received(requested(endpoint_id, name)), ports)
    await handle_serving_event(received(deleted(endpoint_id, name)), ports)
    to_builtin = received(migration(endpoint_id, name, "builtin", rollout=BLUE_GREEN))
    [answer] = statuses_of(await handle_serving_event(to_builtin, ports))
    assert answer.phase is Phase.DELETED
    assert kube.get(*ISVC, NS, name) is None
    assert builtin_objects(kube, name) == (None, None)
