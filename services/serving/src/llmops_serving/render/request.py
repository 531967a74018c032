"""What a rendering needs: the deployment request (from the event) and the operator's options
(from the settings). Plain frozen dataclasses, so renders are pure functions of two values."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmops_serving.config import DeploymentMode
from llmops_serving.render.names import namespace_for
from llmops_shared.events import DeploymentRequested
from llmops_shared.specs import DeploymentSpec, ImageTable


@dataclass(frozen=True)
class ServeRequest:
    """One endpoint's desired deployment, as the event describes it."""

    name: str
    namespace: str
    endpoint_id: str
    environment: str
    route: str
    model_id: str
    spec: DeploymentSpec
    storage_uri: str
    mlflow_run_id: str | None = None
    correlation_id: str | None = None
    request_event_id: str | None = None


@dataclass(frozen=True)
class RenderOptions:
    """The operator's choices that shape every manifest (settings, not events)."""

    deployment_mode: DeploymentMode = DeploymentMode.SERVERLESS
    gpu_available: bool = True
    images: ImageTable = field(default_factory=ImageTable)
    cpu: str = "4"
    memory: str = "16Gi"


def storage_uri_for(
    event: DeploymentRequested, *, template: str, environment: str | None = None
) -> str:
    """The event's ``storage_uri``, else ``template`` filled from the spec."""
    if event.storage_uri:
        return event.storage_uri
    return template.format(
        model_ref=event.spec.model_ref,
        model_family=event.spec.model_family,
        environment=environment or event.environment,
    )


def serve_request(
    event: DeploymentRequested,
    *,
    storage_uri_template: str,
    correlation_id: str | None = None,
    request_event_id: str | None = None,
) -> ServeRequest:
    """The request of a ``DeploymentRequested`` event (namespace ``llm-ops-<environment>``)."""
    return ServeRequest(
        name=event.name,
        namespace=namespace_for(event.environment),
        endpoint_id=event.endpoint_id,
        environment=event.environment,
        route=event.route,
        model_id=event.model_id,
        spec=event.spec,
        storage_uri=storage_uri_for(event, template=storage_uri_template),
        mlflow_run_id=event.mlflow_run_id,
        correlation_id=correlation_id,
        request_event_id=request_event_id,
    )
