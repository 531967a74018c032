"""Names, labels and annotations every rendered object carries.

The watcher finds the objects this worker manages by ``MANAGED_BY_LABEL``; the endpoint id
label links an object back to the gateway's endpoint, so a status event can be reported for
an object the worker has never seen an event about (after a restart). The keys every llm-ops
object carries are :mod:`llmops_shared.kube.labels`'s; the serving worker's own follow.
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
from llmops_shared.kube.labels import namespace_for as namespace_for

KSERVE_API_VERSION: Final = "serving.kserve.io/v1beta1"
KSERVE_PLURAL: Final = "inferenceservices"
DEPLOYMENT_MODE_ANNOTATION: Final = "serving.kserve.io/deploymentMode"

MANAGED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

ENDPOINT_ID_LABEL: Final = f"{PREFIX}endpoint-id"
ENVIRONMENT_LABEL: Final = f"{PREFIX}environment"
SERVE_TARGET_LABEL: Final = f"{PREFIX}serve-target"

MODEL_REF_ANNOTATION: Final = f"{PREFIX}model-ref"
ROUTE_ANNOTATION: Final = f"{PREFIX}route"
MLFLOW_RUN_ANNOTATION: Final = f"{PREFIX}mlflow-run-id"
STORAGE_URI_ANNOTATION: Final = f"{PREFIX}storage-uri"
DEVICE_ANNOTATION: Final = f"{PREFIX}device"
STRATEGY_ANNOTATION: Final = f"{PREFIX}rollout-strategy"
ROLLOUT_STATE_ANNOTATION: Final = f"{PREFIX}rollout-state"
REQUEST_EVENT_ANNOTATION: Final = f"{PREFIX}request-event-id"
MIGRATING_FROM_ANNOTATION: Final = f"{PREFIX}migrating-from"
"""On the new object of an endpoint moving between formats (value: the old format, ``kserve`` or
``builtin``) until the old objects are removed, which happens once the new one is Ready."""

FIELD_MANAGER: Final = "llm-ops-serving"


def is_ours(key: str) -> bool:
    """Whether a label or annotation key is one this worker writes (and so owns)."""
    return key.startswith(PREFIX) or key in {
        MANAGED_BY_LABEL,
        NAME_LABEL,
        PART_OF_LABEL,
        COMPONENT_LABEL,
        DEPLOYMENT_MODE_ANNOTATION,
    }
