"""Names, labels and annotations every rendered object carries.

The watcher finds the objects this worker manages by ``MANAGED_BY_LABEL``; the endpoint id
label links an object back to the gateway's endpoint, so a status event can be reported for
an object the worker has never seen an event about (after a restart).
"""

from __future__ import annotations

from typing import Final

KSERVE_API_VERSION: Final = "serving.kserve.io/v1beta1"
KSERVE_GROUP: Final = "serving.kserve.io"
KSERVE_VERSION: Final = "v1beta1"
KSERVE_PLURAL: Final = "inferenceservices"
DEPLOYMENT_MODE_ANNOTATION: Final = "serving.kserve.io/deploymentMode"

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "llm-ops"
MANAGED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
NAME_LABEL: Final = "app.kubernetes.io/name"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"

PREFIX: Final = "llm-ops.io/"
ENDPOINT_ID_LABEL: Final = f"{PREFIX}endpoint-id"
ENVIRONMENT_LABEL: Final = f"{PREFIX}environment"
MODEL_FAMILY_LABEL: Final = f"{PREFIX}model-family"
SERVE_TARGET_LABEL: Final = f"{PREFIX}serve-target"

MODEL_REF_ANNOTATION: Final = f"{PREFIX}model-ref"
MODEL_ID_ANNOTATION: Final = f"{PREFIX}model-id"
ROUTE_ANNOTATION: Final = f"{PREFIX}route"
MLFLOW_RUN_ANNOTATION: Final = f"{PREFIX}mlflow-run-id"
STORAGE_URI_ANNOTATION: Final = f"{PREFIX}storage-uri"
DEVICE_ANNOTATION: Final = f"{PREFIX}device"
CPU_FALLBACK_ANNOTATION: Final = f"{PREFIX}cpu-fallback-reason"
STRATEGY_ANNOTATION: Final = f"{PREFIX}rollout-strategy"
ROLLOUT_STATE_ANNOTATION: Final = f"{PREFIX}rollout-state"
CORRELATION_ANNOTATION: Final = f"{PREFIX}correlation-id"
REQUEST_EVENT_ANNOTATION: Final = f"{PREFIX}request-event-id"
MIGRATING_FROM_ANNOTATION: Final = f"{PREFIX}migrating-from"
"""On the new object of an endpoint moving between formats (value: the old format, ``kserve`` or
``builtin``) until the old objects are removed, which happens once the new one is Ready."""

FIELD_MANAGER: Final = "llm-ops-serving"


def namespace_for(environment: str) -> str:
    """``llm-ops-<environment>``, the seed's namespace convention (``llm-ops-dev``)."""
    return f"llm-ops-{environment}"


def is_ours(key: str) -> bool:
    """Whether a label or annotation key is one this worker writes (and so owns)."""
    return key.startswith(PREFIX) or key in {
        MANAGED_BY_LABEL,
        NAME_LABEL,
        PART_OF_LABEL,
        COMPONENT_LABEL,
        DEPLOYMENT_MODE_ANNOTATION,
    }
