"""Events, ports and a recording sink shared by the serving tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from pydantic import SecretStr

from llmops_serving.adapters.deployment import DeploymentBackend
from llmops_serving.app import router_for
from llmops_serving.config import DeploymentMode, RenderFormat, ServingSettings
from llmops_serving.ports import ServingBackend, ServingPorts
from llmops_serving.render.request import RenderOptions
from llmops_serving.router import FormatRouter
from llmops_serving.tombstones import MemoryTombstones, Tombstones
from llmops_shared.events import (
    DeploymentDeleted,
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
    DeploymentStatusUpdated,
    Envelope,
    Event,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.kube.watcher import ObservationCache
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from support.streams import FAST_CONSUMER

CORRELATION_ID = "req-serving-test"
ISVC = ("serving.kserve.io/v1beta1", "inferenceservices")


def new_endpoint() -> tuple[str, str]:
    """A fresh endpoint id and InferenceService name."""
    token = uuid.uuid4().hex[:8]
    return str(uuid.uuid4()), f"ep-{token}"


def seed_spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SEED_DEPLOYMENT_SPEC)
    data.update(changes)
    return data


def requested(endpoint_id: str, name: str, **spec_changes: Any) -> Envelope:
    """``DeploymentRequested`` built from the seed's example (quickstart 5.2)."""
    payload = DeploymentRequested.model_validate(
        {
            "endpoint_id": endpoint_id,
            "name": name,
            "environment": "dev",
            "route": "/test-model",
            "model_id": str(uuid.uuid4()),
            "spec": seed_spec(**spec_changes),
            "mlflow_run_id": "run-1",
        }
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def promoted(endpoint_id: str, name: str) -> Envelope:
    payload = DeploymentPromoted(endpoint_id=endpoint_id, name=name, environment="dev")
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def rolled_back(endpoint_id: str, name: str) -> Envelope:
    payload = DeploymentRolledBack(
        endpoint_id=endpoint_id, name=name, environment="dev", reason="error rate"
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def deleted(endpoint_id: str, name: str) -> Envelope:
    payload = DeploymentDeleted(endpoint_id=endpoint_id, name=name, environment="dev")
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def received(envelope: Envelope) -> Event:
    """The event as a consumer decodes it off the stream."""
    return decode_event(encode_event(envelope))


class RecordingSink:
    """A :class:`~llmops_serving.ports.StatusSink` that keeps what it is given (in memory: the
    runtime tests use the real publisher)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return f"0-{len(self.envelopes)}"

    def statuses(self) -> list[DeploymentStatusUpdated]:
        return [received(e).payload_as(DeploymentStatusUpdated) for e in self.envelopes]


def statuses_of(envelopes: list[Envelope]) -> list[DeploymentStatusUpdated]:
    return [received(e).payload_as(DeploymentStatusUpdated) for e in envelopes]


def formats(backend: ServingBackend, *, builtin: bool | None = None) -> FormatRouter:
    """The router of a worker rendering the built-in objects (default: a worker on the
    :class:`DeploymentBackend`) or InferenceServices with ``backend``, as ``app.py`` builds it."""
    if builtin is None:
        builtin = isinstance(backend, DeploymentBackend)
    return router_for(backend, RenderFormat.BUILTIN if builtin else RenderFormat.KSERVE)


def make_ports(
    backend: ServingBackend,
    sink: RecordingSink,
    cache: ObservationCache,
    *,
    mode: DeploymentMode = DeploymentMode.SERVERLESS,
    builtin: bool = False,
    gpu_available: bool = True,
    tombstones: Tombstones | None = None,
) -> ServingPorts:
    """Ports of a worker without Redis: its tombstones (``tombstones``, by default its own) are
    in memory."""
    return ServingPorts(
        router=formats(backend, builtin=builtin),
        options=RenderOptions(deployment_mode=mode, gpu_available=gpu_available),
        storage_uri_template="s3://llm-models/{model_ref}",
        sink=sink,
        cache=cache,
        tombstones=MemoryTombstones() if tombstones is None else tombstones,
    )


def worker_settings(redis_url: str, namespace: str, **overrides: Any) -> ServingSettings:
    """Settings of an in-process worker on its own stream namespace; no ``.env`` read."""
    values: dict[str, Any] = {
        "redis_url": SecretStr(redis_url),
        "stream_namespace": namespace,
        "health_port": 0,
        "log_json": False,
        "consumer": FAST_CONSUMER.model_copy(
            update={"claim_idle_ms": 60_000, "retry_max_backoff_s": 0.05}
        ),
        "watch_interval_s": 0.05,
        "watch_environments": ["dev"],
        **overrides,
    }
    return ServingSettings(_env_file=None, **values)
