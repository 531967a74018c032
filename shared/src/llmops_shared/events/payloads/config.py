"""Payloads on ``llmops.config``: integration flag changes, read by every worker.

The gateway owns the ``integration_configs`` table and publishes one
:class:`IntegrationConfigChanged` per change (through its outbox). Unlike the other streams,
``llmops.config`` is read by *every* worker process, without a consumer group: a flag change must
reach all replicas, not one of them. A worker folds the stream (the highest ``revision`` per
environment and area wins) at start and on every new entry, and restarts its handlers on the
backend the flag selects (see :mod:`llmops_shared.integration_flags`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, model_validator

from llmops_shared.config import Environment
from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import Reason
from llmops_shared.events.names import Stream


class IntegrationArea(StrEnum):
    """The integration quickstart's areas; each is switched by ``<AREA>_ENABLED`` (upper-cased)."""

    EXPERIMENT_TRACKING = "experiment_tracking"
    SERVING_FRAMEWORK = "serving_framework"
    WORKFLOW_ORCHESTRATION = "workflow_orchestration"
    MODEL_REGISTRY = "model_registry"
    DATA_VERSIONING = "data_versioning"


AREA_SYSTEMS: dict[IntegrationArea, tuple[str, ...]] = {
    IntegrationArea.EXPERIMENT_TRACKING: ("mlflow",),
    IntegrationArea.SERVING_FRAMEWORK: ("kserve",),
    IntegrationArea.WORKFLOW_ORCHESTRATION: ("argo_workflows",),
    IntegrationArea.MODEL_REGISTRY: ("huggingface",),
    IntegrationArea.DATA_VERSIONING: ("dvc",),
}
"""The systems each area supports, the default first (the integration quickstart's
``*_SYSTEM``/``*_DEFAULT`` settings)."""


class IntegrationConfigChanged(EventPayload):
    """An integration's flag for one environment is now ``enabled`` on ``system``.

    ``revision`` counts the changes of one environment and area from 1; a reader keeps the
    highest it has seen, so a replayed or reordered older change never wins.
    """

    event_type: ClassVar[str] = "llmops.config.integration.changed.v1"
    stream: ClassVar[Stream] = Stream.CONFIG
    subject_description: ClassVar[str] = "'<environment>/<area>'"

    environment: Environment = Field(description="Environment whose flag changed.")
    area: IntegrationArea = Field(description="The integration area.")
    enabled: bool = Field(description="false: the area's workers use the built-in fallback.")
    system: str = Field(description="The system the area runs on when enabled, e.g. mlflow.")
    revision: int = Field(ge=1, description="Change number of this environment and area.")
    changed_by: str | None = Field(default=None, max_length=256, description="Who changed it.")
    reason: Reason | None = Field(default=None, description="Why, for the audit trail.")

    @model_validator(mode="after")
    def _known_system(self) -> IntegrationConfigChanged:
        supported = AREA_SYSTEMS[self.area]
        if self.system not in supported:
            raise ValueError(
                f"system {self.system!r} is not supported for {self.area.value} "
                f"(supported: {', '.join(supported)})"
            )
        return self

    def subject(self) -> str:
        """``<environment>/<area>``."""
        return f"{self.environment}/{self.area.value}"
