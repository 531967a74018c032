"""Rendering rules: resources per device, args, storage URIs, and what each mode refuses."""

from __future__ import annotations

import pytest

from llmops_serving.config import DeploymentMode
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.request import RenderOptions, storage_uri_for
from llmops_serving.render.rollout import (
    RolloutRefused,
    canary_percent,
    desired_from_live,
    promote,
    rollback,
    rollout_state,
)
from llmops_serving.render.status import observe_builtin, observe_inference_service
from llmops_shared.events import DeploymentRequested, Phase
from llmops_shared.specs import ImageTable
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC
from llmops_shared.streams import NonRetryableError

from unit.serving.cases import BLUE_GREEN, CASES, ENDPOINT_ID, SERVERLESS, request, seed_spec

pytestmark = pytest.mark.unit

RAW = RenderOptions(deployment_mode=DeploymentMode.RAW_DEPLOYMENT)


def _model(manifest: dict) -> dict:  # type: ignore[type-arg]
    return manifest["spec"]["predictor"]["model"]


def test_gpu_render_requests_the_spec_gpus_and_vllm_limits() -> None:
    model = _model(CASES["gpu_blue_green"]())
    assert model["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "--max-model-len=5120" in model["args"]  # 4096 + 1024
    assert "--max-num-seqs=256" in model["args"]
    assert "--backend=vllm" in model["args"]
    assert model["image"] == ImageTable().serve[seed_spec().serve_target].gpu
    assert model["modelFormat"] == {"name": "huggingface"}


@pytest.mark.parametrize("name", ["cpu_use_gpu_false", "cpu_no_gpu_available"])
def test_cpu_render_has_no_gpu_anywhere(name: str) -> None:
    manifest = CASES[name]()
    assert "nvidia.com/gpu" not in str(manifest["spec"])
    model = _model(manifest)
    assert "--backend=huggingface" in model["args"]
    assert model["image"] == ImageTable().serve[seed_spec().serve_target].cpu
    notes = manifest["metadata"]["annotations"]
    assert notes["llm-ops.io/device"] == "cpu"
    assert ("llm-ops.io/cpu-fallback-reason" in notes) is (name == "cpu_no_gpu_available")


def test_canary_in_serverless_sets_canary_traffic_percent() -> None:
    manifest = CASES["canary_serverless"]()
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert canary_percent(manifest) == 10


def test_blue_green_has_no_canary_field() -> None:
    manifest = CASES["gpu_blue_green"]()
    assert "canaryTrafficPercent" not in str(manifest)
    assert "canary" not in manifest["spec"]


def test_canary_in_raw_deployment_is_refused_not_ignored() -> None:
    with pytest.raises(RolloutRefused, match="RawDeployment ignores canaryTrafficPercent"):
        render_inference_service(request(), RAW)
    assert issubclass(RolloutRefused, NonRetryableError)


def test_blue_green_in_raw_deployment_renders_without_canary() -> None:
    manifest = render_inference_service(request(seed_spec(rollout=BLUE_GREEN)), RAW)
    assert "canary" not in str(manifest["spec"])


def test_canary_on_the_builtin_backend_is_refused() -> None:
    with pytest.raises(RolloutRefused, match="cannot split traffic"):
        render_builtin(request(), SERVERLESS)


def test_standard_canary_keeps_the_stable_predictor() -> None:
    manifest = CASES["canary_standard"]()
    spec = manifest["spec"]
    assert spec["predictor"]["model"]["storageUri"].endswith("-v0")
    [canary] = spec["canary"]
    assert canary["trafficPercent"] == 10
    assert canary["predictor"]["model"]["storageUri"].endswith("-v1")
    assert canary["predictor"]["name"] != spec["predictor"]["name"]
    assert "canaryTrafficPercent" not in str(manifest)


def test_standard_first_deployment_takes_all_traffic() -> None:
    options = RenderOptions(deployment_mode=DeploymentMode.STANDARD)
    manifest = render_inference_service(request(), options)
    assert "canary" not in manifest["spec"]
    assert rollout_state(manifest).value == "full"


def test_promote_and_rollback_per_mode() -> None:
    assert "canaryTrafficPercent" not in str(CASES["promote_serverless"]()["spec"])
    assert CASES["rollback_serverless"]()["spec"]["predictor"]["canaryTrafficPercent"] == 0
    promoted = CASES["promote_standard"]()
    assert "canary" not in promoted["spec"]
    assert promoted["spec"]["predictor"]["model"]["storageUri"].endswith("-v1")
    rolled_back = CASES["rollback_standard"]()
    assert "canary" not in rolled_back["spec"]
    assert rolled_back["spec"]["predictor"]["model"]["storageUri"].endswith("-v0")


def test_redelivered_promote_and_rollback_are_no_ops() -> None:
    promoted = CASES["promote_standard"]()
    assert promote(promoted) == promoted
    rolled_back = CASES["rollback_standard"]()
    assert rollback(rolled_back) == rolled_back


def test_rollback_without_a_previous_version_is_refused() -> None:
    raw = render_inference_service(request(seed_spec(rollout=BLUE_GREEN)), RAW)
    with pytest.raises(RolloutRefused, match="keeps none"):
        rollback(raw)
    with pytest.raises(RolloutRefused):
        rollback(CASES["builtin_deployment_service"]())


def test_storage_uri_from_event_else_template() -> None:
    data = {
        "endpoint_id": ENDPOINT_ID,
        "name": "m",
        "environment": "stg",
        "route": "/m",
        "model_id": ENDPOINT_ID,
        "spec": SEED_DEPLOYMENT_SPEC,
    }
    event = DeploymentRequested.model_validate(data)
    template = "s3://models/{environment}/{model_family}/{model_ref}"
    assert storage_uri_for(event, template=template) == "s3://models/stg/llama/llama-3-8b-sft-v1"
    given = DeploymentRequested.model_validate({**data, "storage_uri": "s3://x/y"})
    assert storage_uri_for(given, template=template) == "s3://x/y"


def test_desired_from_live_drops_status_and_foreign_metadata() -> None:
    live = CASES["canary_serverless"]()
    live["status"] = {"url": "http://x"}
    live["metadata"]["managedFields"] = [{}]
    live["metadata"]["labels"]["someone-else"] = "x"
    live["metadata"]["resourceVersion"] = "7"
    assert desired_from_live(live) == CASES["canary_serverless"]()


def test_observe_inference_service_phases() -> None:
    obj = CASES["canary_serverless"]()
    assert observe_inference_service(obj).phase is Phase.PENDING
    obj["status"] = {
        "url": "http://m.llm-ops-dev.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        "components": {
            "predictor": {
                "traffic": [
                    {"revisionName": "m-2", "percent": 10, "latestRevision": True},
                    {"revisionName": "m-1", "percent": 90, "latestRevision": False, "tag": "prev"},
                ]
            }
        },
    }
    ready = observe_inference_service(obj)
    assert ready.phase is Phase.READY
    assert ready.url == "http://m.llm-ops-dev.example.com"
    assert ready.traffic == [
        {"revision": "m-2", "percent": 10, "latest": True},
        {"revision": "m-1", "percent": 90, "latest": False, "tag": "prev"},
    ]
    obj["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "OOMKilled"}
    ]
    failed = observe_inference_service(obj)
    assert (failed.phase, failed.reason) == (Phase.FAILED, "RevisionFailed: OOMKilled")
    obj["metadata"]["generation"] = 3
    obj["status"]["observedGeneration"] = 2
    assert observe_inference_service(obj).phase is Phase.PENDING


def test_observe_builtin_deployment() -> None:
    deployment = CASES["builtin_deployment_service"]()["items"][0]
    assert observe_builtin(deployment).phase is Phase.PENDING
    deployment["metadata"]["generation"] = 1
    deployment["status"] = {
        "observedGeneration": 1,
        "updatedReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    ready = observe_builtin(deployment)
    assert ready.phase is Phase.READY
    assert ready.url == "http://llama-3-8b-sft.llm-ops-dev.svc.cluster.local"
