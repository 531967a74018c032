"""Request and response bodies of ``/serving/endpoints``: endpoints and their deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Page
from llmops_gateway.db.models import ServingDeployment
from llmops_shared.events.fields import Route
from llmops_shared.specs import DeploymentSpec

Environment = Literal["dev", "stg", "prod"]


class ServingEndpointRequest(CamelModel):
    """``POST /serving/endpoints`` (the serving-endpoint example of the integration quickstart)."""

    model_id: str = Field(
        min_length=1,
        max_length=256,
        description="The catalog model to serve: its id, or its name.",
    )
    route: Route
    environment: Environment = Field(description="Target environment: dev, stg or prod.")
    deployment_spec: DeploymentSpec = Field(
        description="The DeploymentSpec: which trained model to serve, as what, with which "
        "limits and rollout."
    )


class RollbackRequest(CamelModel):
    """``POST /serving/endpoints/{id}/rollback`` (the body is optional)."""

    reason: str = Field(default="rolled back by user", min_length=1, max_length=2000)


class ServingEndpointOut(CamelModel):
    """A serving endpoint as clients see it.

    ``status`` is the last reported phase (Pending until the first report: Ready, Failed,
    Degraded...), or Deleting / DeleteFailed after a DELETE.
    """

    id: str
    name: str = Field(description="The InferenceService (or Deployment) name.")
    route: str
    environment: str
    model_id: str = Field(description="Catalog id of the served model.")
    status: str
    reason: str | None
    url: str | None = Field(description="Where the endpoint answers, once reported.")
    rollout_action: str | None = Field(
        description="promoted or rolled_back once requested; null before."
    )
    deployment_spec: dict[str, Any] | None = Field(
        description="The spec as stored at creation; null for a viewer (only operators and "
        "admins see stored specs)."
    )
    storage_uri: str | None = Field(
        description="The artifact the endpoint serves: the registered model of the Succeeded "
        "training job that produced model_ref; null: the serving worker resolves model_ref "
        "itself (its storage URI template), or the caller is a viewer."
    )
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    delete_requested_at: datetime | None
    status_url: str
    deployment_url: str
    violations: list[dict[str, Any]] | None = Field(
        default=None,
        description="Rules the stored spec broke at the last `validate serving-endpoints "
        "--mark` (`{loc, message, rule, type}` each; [] when clean); null: never re-validated.",
    )
    validated_at: datetime | None = Field(
        default=None,
        description="When `validate serving-endpoints --mark` last checked the endpoint.",
    )

    @classmethod
    def of(cls, endpoint: ServingDeployment, *, with_spec: bool = True) -> ServingEndpointOut:
        url = f"{API_PREFIX}/serving/endpoints/{endpoint.id}"
        return cls.from_row(
            endpoint,
            name=endpoint.endpoint_name,
            url=endpoint.serve_url,
            deployment_spec=endpoint.spec if with_spec else None,
            storage_uri=endpoint.storage_uri if with_spec else None,
            status_url=url,
            deployment_url=f"{url}/deployment",
        )


class ServingEndpointList(Page[ServingEndpointOut]):
    pass


class TrafficTargetOut(CamelModel):
    revision: str | None = None
    percent: int | None = None
    latest: bool | None = None
    tag: str | None = None


class RolloutOut(CamelModel):
    """The rollout as reported: the strategy and the canary's share of the traffic."""

    strategy: str | None = None
    canary_percent: int | None = None


class DeploymentOut(CamelModel):
    """The endpoint's cluster resource as the serving worker last reported it."""

    endpoint_id: str
    name: str
    namespace: str | None
    backend: str | None = Field(description="kserve, deployment or manifests.")
    deployment_mode: str | None
    manifest: dict[str, Any] | None = Field(
        description="The rendered InferenceService (or Deployment) as last reported; null for "
        "a viewer (it holds the spec's model location)."
    )
    status: str | None = Field(description="The reported phase.")
    reason: str | None
    url: str | None
    conditions: list[Any]
    traffic: list[TrafficTargetOut]
    rollout: RolloutOut | None
    observed_at: datetime

    @classmethod
    def of(
        cls, endpoint: ServingDeployment, observed_at: datetime, *, with_spec: bool = True
    ) -> DeploymentOut:
        return cls(
            endpoint_id=endpoint.id,
            name=endpoint.endpoint_name,
            namespace=endpoint.namespace,
            backend=endpoint.backend,
            deployment_mode=endpoint.deployment_mode,
            manifest=endpoint.manifest if with_spec else None,
            status=endpoint.reported_phase,
            reason=endpoint.reported_reason,
            url=endpoint.serve_url,
            conditions=endpoint.conditions or [],
            traffic=[TrafficTargetOut.model_validate(t) for t in endpoint.traffic or []],
            rollout=None if endpoint.rollout is None else RolloutOut(**endpoint.rollout),
            observed_at=observed_at,
        )
