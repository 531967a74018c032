"""Labels and annotations linking a rendered object to its endpoint, model, route and run.

Labels hold what is selected on (managed-by, endpoint id, environment); everything free-form
(model ref, route, storage URI, MLflow run) is an annotation, whose values have no
63-character/charset limit.
"""

from __future__ import annotations

from llmops_serving.render import names
from llmops_serving.render.request import ServeRequest
from llmops_shared.specs import ImageChoice


def object_labels(request: ServeRequest) -> dict[str, str]:
    """The labels of every object of the endpoint; the watcher lists by ``managed-by``."""
    return {
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.PART_OF_LABEL: names.MANAGED_BY,
        names.NAME_LABEL: request.name,
        names.ENDPOINT_ID_LABEL: request.endpoint_id,
        names.ENVIRONMENT_LABEL: request.environment,
        names.MODEL_FAMILY_LABEL: request.spec.model_family,
        names.SERVE_TARGET_LABEL: request.spec.serve_target.value,
    }


def object_annotations(request: ServeRequest, image: ImageChoice, *, state: str) -> dict[str, str]:
    """Links to the model, route and run, the device decision and the rollout state."""
    notes = {
        names.MODEL_REF_ANNOTATION: request.spec.model_ref,
        names.MODEL_ID_ANNOTATION: request.model_id,
        names.ROUTE_ANNOTATION: request.route,
        names.STORAGE_URI_ANNOTATION: request.storage_uri,
        names.DEVICE_ANNOTATION: image.device,
        names.STRATEGY_ANNOTATION: request.spec.rollout.strategy.value,
        names.ROLLOUT_STATE_ANNOTATION: state,
    }
    if request.mlflow_run_id:
        notes[names.MLFLOW_RUN_ANNOTATION] = request.mlflow_run_id
    if image.fell_back and image.reason:
        notes[names.CPU_FALLBACK_ANNOTATION] = image.reason
    if request.correlation_id:
        notes[names.CORRELATION_ANNOTATION] = request.correlation_id
    if request.request_event_id:
        notes[names.REQUEST_EVENT_ANNOTATION] = request.request_event_id
    return notes
