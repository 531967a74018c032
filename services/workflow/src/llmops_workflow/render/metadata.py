"""Labels and annotations linking a rendered object to its job, model, dataset and request.

Labels hold what is selected on (managed-by, job id, job type, method, device); free-form
values (artifact and model refs, dataset, correlation id) are annotations, whose values have
no 63-character/charset limit.
"""

from __future__ import annotations

from llmops_workflow.render import names
from llmops_workflow.render.request import TrainRequest
from llmops_workflow.render.steps import Plan


def object_labels(request: TrainRequest, plan: Plan) -> dict[str, str]:
    """The labels of the pipeline object(s); the watcher lists by managed-by + component."""
    spec = request.spec
    return {
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.PART_OF_LABEL: names.MANAGED_BY,
        names.COMPONENT_LABEL: names.COMPONENT,
        names.NAME_LABEL: names.workflow_name(request.job_id),
        names.JOB_ID_LABEL: request.job_id,
        names.JOB_TYPE_LABEL: spec.job_type.value,
        names.METHOD_LABEL: spec.method.value,
        names.MODEL_FAMILY_LABEL: spec.model_family,
        names.DEVICE_LABEL: plan.train_image.device,
    }


def pod_labels(request: TrainRequest) -> dict[str, str]:
    """Labels of every pod of the pipeline (to find them, and for multi-node affinity)."""
    return {
        names.MANAGED_BY_LABEL: names.MANAGED_BY,
        names.JOB_ID_LABEL: request.job_id,
    }


def object_annotations(request: TrainRequest, plan: Plan) -> dict[str, str]:
    """Links to the artifact, base model, dataset and request; the device decision."""
    spec = request.spec
    notes = {
        names.ARTIFACT_ANNOTATION: spec.output.artifact_name,
        names.DATASET_ANNOTATION: f"{spec.dataset_ref.name}:{spec.dataset_ref.version}",
        names.STEPS_TOTAL_ANNOTATION: str(plan.steps_total),
    }
    if spec.base_model_ref:
        notes[names.BASE_MODEL_ANNOTATION] = spec.base_model_ref
    if request.model_id:
        notes[names.MODEL_ID_ANNOTATION] = request.model_id
    if request.dataset_id:
        notes[names.DATASET_ID_ANNOTATION] = request.dataset_id
    reasons = [
        r
        for r in (plan.train_image.reason if plan.train_image.fell_back else None, plan.method_note)
        if r
    ]
    if reasons:
        notes[names.CPU_FALLBACK_ANNOTATION] = "; ".join(reasons)
    if request.correlation_id:
        notes[names.CORRELATION_ANNOTATION] = request.correlation_id
    return notes
