"""Payloads on ``llmops.serving``: consumed by serving (KServe)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from llmops_shared.config import Environment
from llmops_shared.events.base import EventPayload
from llmops_shared.events.fields import (
    InferenceServiceName,
    Name,
    Reason,
    ResourceId,
    Route,
    Uri,
)
from llmops_shared.events.names import Stream
from llmops_shared.specs import DeploymentSpec


class _EndpointEvent(EventPayload):
    """Fields every serving event carries: which endpoint, under which name, where."""

    stream: ClassVar[Stream] = Stream.SERVING
    subject_description: ClassVar[str] = "data.endpoint_id"

    endpoint_id: ResourceId = Field(description="Id of the serving endpoint.")
    name: InferenceServiceName
    environment: Environment = Field(description="Target environment: dev, stg or prod.")

    def subject(self) -> str:
        """The endpoint id."""
        return self.endpoint_id


class DeploymentRequested(_EndpointEvent):
    """A model should be (re)deployed behind an endpoint.

    The InferenceService is named ``name``, so a redelivered request updates the same resource.
    With a canary rollout the new version takes ``spec.rollout.traffic_split.new`` percent of the
    traffic until a DeploymentPromoted or DeploymentRolledBack event. Every endpoint has its own
    ``endpoint_id`` (a re-created one gets a new id): serving applies nothing for an endpoint
    whose DeploymentDeleted it handled, and reports it ``Deleted`` again.
    """

    event_type: ClassVar[str] = "llmops.serving.deployment.requested.v1"

    route: Route
    model_id: ResourceId = Field(description="Catalog id of the model being served.")
    spec: DeploymentSpec = Field(description="The validated DeploymentSpec.")
    storage_uri: Uri | None = Field(
        default=None, description="Where the model artifact is; null lets serving resolve it."
    )
    mlflow_run_id: Name | None = Field(
        default=None, description="MLflow run that produced the model, when tracked."
    )


class DeploymentPromoted(_EndpointEvent):
    """The canary version of an endpoint should take all of its traffic."""

    event_type: ClassVar[str] = "llmops.serving.deployment.promoted.v1"


class DeploymentRolledBack(_EndpointEvent):
    """The endpoint should return all traffic to the previous version."""

    event_type: ClassVar[str] = "llmops.serving.deployment.rolled_back.v1"

    reason: Reason = Field(description="Why it was rolled back, for the status history.")


class DeploymentDeleted(_EndpointEvent):
    """Deletion of the endpoint was requested (and accepted by the gateway).

    The past tense is the gateway's view: the endpoint no longer exists for clients. The
    InferenceService is removed by the serving worker afterwards, which reports a status event
    with phase ``Deleted`` once it is gone; until then the endpoint's status is not ``Deleted``.
    The worker keeps the endpoint id as deleted (a tombstone) and applies no later event for it.
    The gateway also sends it, unasked, for an endpoint it does not hold whose object a status
    report shows (``name`` and ``environment`` then come from that report).
    """

    event_type: ClassVar[str] = "llmops.serving.deployment.deleted.v1"


class DeploymentMigrationRequested(DeploymentRequested):
    """An endpoint should move to another serving format (``migrate serving-to-kserve``, or
    ``rollback integrations --remove-kserve`` back to the built-in one).

    Carries the endpoint's current request, so the serving worker renders it in the ``target``
    format, applies it under the same name, and only then removes the resources of the other
    format: the endpoint keeps serving throughout. A redelivery re-applies the same manifests.
    """

    event_type: ClassVar[str] = "llmops.serving.deployment_migration.requested.v1"

    target: Literal["kserve", "builtin"] = Field(
        description="kserve: a KServe InferenceService; builtin: the plain Deployment + Service."
    )
