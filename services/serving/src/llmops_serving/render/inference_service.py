"""The KServe InferenceService of a deployment request (``serving.kserve.io/v1beta1``).

Built as plain dicts (the ``kserve`` SDK breaks on kubernetes 37); every field is checked by
the tests against the v0.20 CRD schema in strict mode.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmops_serving.config import DeploymentMode
from llmops_serving.render import names
from llmops_serving.render.metadata import object_annotations, object_labels
from llmops_serving.render.model_server import MODEL_FORMAT, ModelServer, model_server
from llmops_serving.render.request import RenderOptions, ServeRequest
from llmops_serving.render.rollout import RolloutRefused, RolloutState, canary_refusal
from llmops_shared.specs import RolloutStrategy


def predictor_revision_name(predictor: dict[str, Any]) -> str:
    """A deterministic name of a predictor version (``rev-<hash>``), used by Standard mode's
    named canaries: the same model and settings always get the same name, so a redelivered
    request renders the same object."""
    body = {k: v for k, v in predictor.items() if k != "name"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"rev-{digest[:8]}"


def predictor(request: ServeRequest, server: ModelServer) -> dict[str, Any]:
    """``spec.predictor`` serving the requested model (no rollout fields)."""
    return {
        "model": {
            # KServe's own container name; the v0.20 schema requires a name on a canary's
            # model (a Container there), so it is set everywhere for one shape
            "name": "kserve-container",
            "modelFormat": {"name": MODEL_FORMAT},
            "storageUri": request.storage_uri,
            "image": server.image.image,
            "args": list(server.args),
            "resources": {k: dict(v) for k, v in server.resources.items()},
        }
    }


def render_inference_service(
    request: ServeRequest,
    options: RenderOptions,
    *,
    stable_predictor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The InferenceService for ``request`` in ``options.deployment_mode``.

    ``stable_predictor`` is the predictor currently serving (from the live object); Standard
    mode needs it for a canary, because its canary is a second predictor beside the stable
    one. Without one (first deployment) the new version simply takes all traffic. Raises
    :class:`RolloutRefused` for a canary in RawDeployment mode.
    """
    mode = options.deployment_mode
    server = model_server(request.spec, model_name=request.name, options=options)
    new = predictor(request, server)
    canary = request.spec.rollout.strategy is RolloutStrategy.CANARY
    split = request.spec.rollout.traffic_split
    state = RolloutState.FULL
    spec: dict[str, Any] = {"predictor": new}
    if canary and mode is DeploymentMode.RAW_DEPLOYMENT:
        raise RolloutRefused(canary_refusal(mode))
    if canary and split is not None:
        if mode is DeploymentMode.SERVERLESS:
            new["canaryTrafficPercent"] = split.new
            state = RolloutState.CANARY
        elif stable_predictor is not None:
            stable = dict(stable_predictor)
            named = {"name": predictor_revision_name(new), **new}
            if stable.get("name") == named["name"]:
                pass  # the requested version is already the stable one: nothing to split
            else:
                spec = {
                    "predictor": stable,
                    "canary": [{"trafficPercent": split.new, "predictor": named}],
                }
                state = RolloutState.CANARY
    if mode is DeploymentMode.STANDARD and "name" not in spec["predictor"]:
        spec["predictor"] = {"name": predictor_revision_name(new), **spec["predictor"]}
    return {
        "apiVersion": names.KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": object_labels(request),
            "annotations": {
                names.DEPLOYMENT_MODE_ANNOTATION: mode.value,
                **object_annotations(request, server.image, state=state.value),
            },
        },
        "spec": spec,
    }
