"""The rendered cases with golden files: one request per rollout/device situation.

Every case starts from the seed's DeploymentSpec (quickstart 5.2) with fixed ids, so the
renders are byte-for-byte reproducible.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from llmops_serving.config import DeploymentMode
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.request import RenderOptions, ServeRequest
from llmops_serving.render.rollout import promote, rollback
from llmops_shared.specs import DeploymentSpec
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

ENDPOINT_ID = "0b6f3c9e-6f1e-4c8e-9a51-3f1d2a7c9b10"
BLUE_GREEN = {"strategy": "blue-green"}


def seed_spec(**changes: Any) -> DeploymentSpec:
    """The seed's DeploymentSpec with top-level fields replaced."""
    data = copy.deepcopy(SEED_DEPLOYMENT_SPEC)
    data.update(changes)
    return DeploymentSpec.model_validate(data)


def request(spec: DeploymentSpec | None = None, **changes: Any) -> ServeRequest:
    """A fixed request for ``llama-3-8b-sft`` in dev."""
    values: dict[str, Any] = {
        "name": "llama-3-8b-sft",
        "namespace": "llm-ops-dev",
        "endpoint_id": ENDPOINT_ID,
        "environment": "dev",
        "route": "/test-model",
        "model_id": "7d1c2b3a-0000-4000-8000-000000000001",
        "spec": spec or seed_spec(),
        "storage_uri": "s3://llm-models/llama-3-8b-sft-v1",
        "mlflow_run_id": "4f2a9c0d1e2b3c4d5e6f7a8b9c0d1e2f",
        "correlation_id": "req-golden",
    }
    values.update(changes)
    return ServeRequest(**values)


SERVERLESS = RenderOptions(deployment_mode=DeploymentMode.SERVERLESS)
STANDARD = RenderOptions(deployment_mode=DeploymentMode.STANDARD)
NO_GPU = RenderOptions(deployment_mode=DeploymentMode.SERVERLESS, gpu_available=False)


def _standard_canary() -> dict[str, Any]:
    stable = render_inference_service(
        request(seed_spec(rollout=BLUE_GREEN), storage_uri="s3://llm-models/llama-3-8b-sft-v0"),
        STANDARD,
    )
    return render_inference_service(
        request(), STANDARD, stable_predictor=stable["spec"]["predictor"]
    )


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "gpu_blue_green": lambda: render_inference_service(
        request(seed_spec(rollout=BLUE_GREEN)), SERVERLESS
    ),
    "cpu_use_gpu_false": lambda: render_inference_service(
        request(seed_spec(rollout=BLUE_GREEN, use_gpu=False)), SERVERLESS
    ),
    "cpu_no_gpu_available": lambda: render_inference_service(
        request(seed_spec(rollout=BLUE_GREEN)), NO_GPU
    ),
    "canary_serverless": lambda: render_inference_service(request(), SERVERLESS),
    "promote_serverless": lambda: promote(render_inference_service(request(), SERVERLESS)),
    "rollback_serverless": lambda: rollback(render_inference_service(request(), SERVERLESS)),
    "canary_standard": _standard_canary,
    "promote_standard": lambda: promote(_standard_canary()),
    "rollback_standard": lambda: rollback(_standard_canary()),
    "builtin_deployment_service": lambda: render_builtin(
        request(seed_spec(rollout=BLUE_GREEN)), SERVERLESS
    ),
}
"""Golden file name (without ``.yaml``) -> the render it holds."""

INFERENCE_SERVICE_CASES = [name for name in CASES if not name.startswith("builtin")]
