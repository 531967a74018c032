"""The built-in Deployment + Service backend (on the API test double) and the manifests backend
(real files): what they write, status, delete, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops_serving.adapters.deployment import DeploymentBackend
from llmops_serving.adapters.manifests import ManifestsBackend
from llmops_serving.config import DeploymentMode
from llmops_serving.handlers import handle_serving_event
from llmops_serving.render.rollout import RolloutRefused
from llmops_serving.watcher import Watcher
from llmops_shared.events import Phase
from llmops_shared.kube.watcher import NoCache
from llmops_shared.manifest_files import load_documents

from integration.serving.helpers import (
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
BLUE_GREEN = {"strategy": "blue-green"}


async def test_builtin_backend_creates_a_deployment_and_a_service(
    kube: KubeApiServer, deployments: DeploymentBackend
) -> None:
    sink = RecordingSink()
    watcher = Watcher(formats(deployments), sink, namespaces=[NS], interval_s=0.05)
    ports = make_ports(deployments, sink, watcher, builtin=True, gpu_available=False)
    endpoint_id, name = new_endpoint()
    event = requested(endpoint_id, name, rollout=BLUE_GREEN)
    [pending] = statuses_of(await handle_serving_event(received(event), ports))
    await handle_serving_event(received(event), ports)  # redelivery: same objects
    deployment = kube.get("apps/v1", "deployments", NS, name)
    service = kube.get("v1", "services", NS, name)
    assert deployment is not None
    assert service is not None
    assert deployment["metadata"]["generation"] == 1
    assert len(kube.list("apps/v1", "deployments", NS)) == 1
    assert "nvidia.com/gpu" not in str(deployment["spec"])
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert pending.phase is Phase.PENDING
    assert details_of(pending)["backend"] == "deployment"
    assert details_of(pending)["deployment_mode"] is None
    await watcher.poll_once()
    kube.set_status(
        "apps/v1",
        "deployments",
        NS,
        name,
        {
            "observedGeneration": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    )
    assert await watcher.poll_once() == 1
    ready = sink.statuses()[-1]
    assert ready.phase is Phase.READY
    assert details_of(ready)["url"] == f"http://{name}.{NS}.svc.cluster.local"
    [gone] = statuses_of(await handle_serving_event(received(deleted(endpoint_id, name)), ports))
    assert gone.phase is Phase.DELETED
    assert kube.get("v1", "services", NS, name) is None


async def test_builtin_backend_refuses_canary_and_rollback(
    kube: KubeApiServer, deployments: DeploymentBackend
) -> None:
    sink = RecordingSink()
    ports = make_ports(deployments, sink, NoCache(), builtin=True)
    endpoint_id, name = new_endpoint()
    with pytest.raises(RolloutRefused, match="cannot split traffic"):
        await handle_serving_event(received(requested(endpoint_id, name)), ports)
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    # no canary, so nothing to roll back: a no-op, not a Failed endpoint
    assert await handle_serving_event(received(rolled_back(endpoint_id, name)), ports) == []
    assert [s.phase for s in sink.statuses()] == [Phase.FAILED]


async def test_manifests_backend_writes_validated_yaml_atomically(tmp_path: Path) -> None:
    backend = ManifestsBackend(tmp_path / "manifests")
    sink = RecordingSink()
    ports = make_ports(backend, sink, NoCache())
    endpoint_id, name = new_endpoint()
    event = requested(endpoint_id, name)
    [ready] = statuses_of(await handle_serving_event(received(event), ports))
    path = tmp_path / "manifests" / NS / f"{name}.yaml"
    assert ready.phase is Phase.READY
    assert ready.reason == f"written to {path}"
    [manifest] = load_documents(path.read_text())
    assert schema_errors(manifest) == []
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    mtime = path.stat().st_mtime_ns
    await handle_serving_event(received(event), ports)  # a redelivery
    assert path.stat().st_mtime_ns == mtime  # identical content is not rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left
    await handle_serving_event(received(promoted(endpoint_id, name)), ports)
    assert "canaryTrafficPercent" not in path.read_text()
    [gone] = statuses_of(await handle_serving_event(received(deleted(endpoint_id, name)), ports))
    assert gone.phase is Phase.DELETED
    assert not path.exists()


async def test_manifests_backend_standard_canary_reads_the_file(tmp_path: Path) -> None:
    backend = ManifestsBackend(tmp_path)
    ports = make_ports(backend, RecordingSink(), NoCache(), mode=DeploymentMode.STANDARD)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    await handle_serving_event(received(requested(endpoint_id, name, use_gpu=False)), ports)
    [manifest] = load_documents((tmp_path / NS / f"{name}.yaml").read_text())
    assert manifest["spec"]["canary"][0]["trafficPercent"] == 10
    assert schema_errors(manifest) == []


async def test_manifests_backend_writes_the_builtin_objects(tmp_path: Path) -> None:
    ports = make_ports(ManifestsBackend(tmp_path), RecordingSink(), NoCache(), builtin=True)
    endpoint_id, name = new_endpoint()
    await handle_serving_event(received(requested(endpoint_id, name, rollout=BLUE_GREEN)), ports)
    docs = load_documents((tmp_path / NS / f"{name}.yaml").read_text())
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
