"""Names, labels and annotations every rendered object carries.

The watcher finds the pipelines this worker manages by ``MANAGED_SELECTOR``; the job id label
links a Workflow back to the gateway's job, so a status event can be reported for a workflow
the worker has never seen an event about (after a restart). The keys every llm-ops object
carries are :mod:`llmops_shared.kube.labels`'s; the workflow worker's own follow.
"""

from __future__ import annotations

from typing import Final

from llmops_shared.kube.labels import COMPONENT_LABEL as COMPONENT_LABEL
from llmops_shared.kube.labels import CORRELATION_ANNOTATION as CORRELATION_ANNOTATION
from llmops_shared.kube.labels import CPU_FALLBACK_ANNOTATION as CPU_FALLBACK_ANNOTATION
from llmops_shared.kube.labels import MANAGED_BY as MANAGED_BY
from llmops_shared.kube.labels import MANAGED_BY_LABEL as MANAGED_BY_LABEL
from llmops_shared.kube.labels import MODEL_FAMILY_LABEL as MODEL_FAMILY_LABEL
from llmops_shared.kube.labels import MODEL_ID_ANNOTATION as MODEL_ID_ANNOTATION
from llmops_shared.kube.labels import NAME_LABEL as NAME_LABEL
from llmops_shared.kube.labels import PART_OF_LABEL as PART_OF_LABEL
from llmops_shared.kube.labels import PREFIX as PREFIX

ARGO_GROUP: Final = "argoproj.io"
ARGO_VERSION: Final = "v1alpha1"
ARGO_API_VERSION: Final = f"{ARGO_GROUP}/{ARGO_VERSION}"
WORKFLOW_PLURAL: Final = "workflows"

COMPONENT: Final = "training-pipeline"
MANAGED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={COMPONENT}"

JOB_ID_LABEL: Final = f"{PREFIX}job-id"
JOB_TYPE_LABEL: Final = f"{PREFIX}job-type"
METHOD_LABEL: Final = f"{PREFIX}method"
DEVICE_LABEL: Final = f"{PREFIX}device"
STAGE_LABEL: Final = f"{PREFIX}stage"
NODE_RANK_LABEL: Final = f"{PREFIX}node-rank"

ARTIFACT_ANNOTATION: Final = f"{PREFIX}artifact-name"
BASE_MODEL_ANNOTATION: Final = f"{PREFIX}base-model-ref"
DATASET_ANNOTATION: Final = f"{PREFIX}dataset"
DATASET_ID_ANNOTATION: Final = f"{PREFIX}dataset-id"
STEPS_TOTAL_ANNOTATION: Final = f"{PREFIX}steps-total"
STAGE_INDEX_ANNOTATION: Final = f"{PREFIX}stage-index"

FIELD_MANAGER: Final = "llm-ops-workflow"
"""Server-side apply field manager of the pipelines."""

TERMINATE_MANAGER: Final = "llm-ops-workflow-cancel"
"""Field manager of the ``spec.shutdown`` merge patch: a different owner than the apply, so a
redelivered submission (an apply without ``shutdown``) never removes a termination."""

OUTPUTS_DIR: Final = "/tmp"
"""Where stages write the files Argo reads as output parameters (``LLMOPS_OUTPUTS_DIR``
overrides it: the local backend gives every pipeline its own directory)."""
RUN_ID_PARAMETER: Final = "mlflow-run-id"
RUN_ID_PATH: Final = f"{OUTPUTS_DIR}/{RUN_ID_PARAMETER}"
MODEL_VERSION_PARAMETER: Final = "model-version"
MODEL_VERSION_PATH: Final = f"{OUTPUTS_DIR}/model-version.json"
"""register's record of the model version it created (llmops_trainer.register)."""
JOB_ID_TAG: Final = "llmops.job_id"
"""The MLflow tag the tracking worker puts on the job's run (llmops_tracking.mapping)."""

STAGES: Final = ("prepare-data", "train", "evaluate", "register")
"""The pipeline's stages, in order."""


def is_ours(key: str) -> bool:
    """Whether a label or annotation key is one this worker writes (and so owns); Argo adds
    ``workflows.argoproj.io/*``."""
    return key.startswith(PREFIX) or key.startswith("app.kubernetes.io/")


def workflow_name(job_id: str) -> str:
    """``train-<job_id>``: deterministic, so a redelivered event finds the existing workflow.
    Job ids are at most 57 characters (``ResourceId``), so the name is a valid label value."""
    return f"train-{job_id}"


def rendezvous_name(job_id: str) -> str:
    """The headless Service of a multi-node job's rank 0 (``rdzv-<job_id>``, at most 62
    characters, a DNS-1035 label)."""
    return f"rdzv-{job_id}"


def job_stage_name(job_id: str, stage: str) -> str:
    """The built-in backend's Job of one stage (``<stage>-<job_id>``)."""
    short = {"prepare-data": "prep", "train": "train", "evaluate": "eval", "register": "reg"}
    return f"{short[stage]}-{job_id}"
