"""The labels and annotations every object llm-ops renders carries, and its namespaces.

Labels hold what is selected on (managed-by, the endpoint or job id); free-form values are
annotations. The serving and workflow workers add their own keys under :data:`PREFIX`.
"""

from __future__ import annotations

from typing import Final

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "llm-ops"
NAME_LABEL: Final = "app.kubernetes.io/name"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"

PREFIX: Final = "llm-ops.io/"
MODEL_FAMILY_LABEL: Final = f"{PREFIX}model-family"

MODEL_ID_ANNOTATION: Final = f"{PREFIX}model-id"
CPU_FALLBACK_ANNOTATION: Final = f"{PREFIX}cpu-fallback-reason"
CORRELATION_ANNOTATION: Final = f"{PREFIX}correlation-id"
"""The request that last changed the object: reports about it carry it as correlation id."""


def namespace_for(environment: str) -> str:
    """``llm-ops-<environment>``, the namespaces of the integration quickstart (``llm-ops-dev``)."""
    return f"llm-ops-{environment}"
