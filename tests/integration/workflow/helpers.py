"""Events, ports and a recording sink shared by the workflow tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from pydantic import SecretStr

from llmops_shared.events import (
    Envelope,
    Event,
    JobStatusUpdated,
    PipelineStatusUpdated,
    StatusUpdated,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.kube.watcher import ObservationCache
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.config import WorkflowSettings
from llmops_workflow.ports import PipelineLedger, WorkflowBackend, WorkflowPorts
from llmops_workflow.render.request import RenderOptions

from support.streams import FAST_CONSUMER

CORRELATION_ID = "req-workflow-test"
WORKFLOWS = ("argoproj.io/v1alpha1", "workflows")
JOBS = ("batch/v1", "jobs")
NS = "llm-ops-dev"


def new_job_id() -> str:
    return str(uuid.uuid4())


def seed_spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    data.update(changes)
    return data


def submitted(job_id: str, **spec_changes: Any) -> Envelope:
    """``TrainingJobSubmitted`` of the seed's example (quickstart 5.1)."""
    payload = TrainingJobSubmitted.model_validate(
        {"job_id": job_id, "spec": seed_spec(**spec_changes)}
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def cancelled(job_id: str) -> Envelope:
    payload = TrainingJobCancelled(job_id=job_id, reason="user asked")
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def delete_workflow(kube: Any, name: str, namespace: str = NS) -> None:
    """Delete a Workflow through the API (what Argo's TTL or ``kubectl delete`` does);
    ``kube`` is the :class:`~support.k8s_server.KubeApiServer`."""
    from kubernetes import client

    client.CustomObjectsApi(kube.api_client()).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "workflows", name
    )


def received(envelope: Envelope) -> Event:
    """The event as a consumer decodes it off the stream."""
    return decode_event(encode_event(envelope))


def split(envelopes: list[Envelope]) -> tuple[list[PipelineStatusUpdated], list[JobStatusUpdated]]:
    """Pipeline and job status payloads, in order."""
    payloads: list[StatusUpdated] = [received(e).payload for e in envelopes]  # type: ignore[misc]
    pipelines = [p for p in payloads if isinstance(p, PipelineStatusUpdated)]
    jobs = [p for p in payloads if isinstance(p, JobStatusUpdated)]
    return pipelines, jobs


class RecordingSink:
    """A :class:`~llmops_workflow.ports.StatusSink` that keeps what it is given (in memory:
    the runtime tests use the real publisher)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return f"0-{len(self.envelopes)}"

    def split(self) -> tuple[list[PipelineStatusUpdated], list[JobStatusUpdated]]:
        return split(self.envelopes)


def make_ports(
    backend: WorkflowBackend,
    sink: RecordingSink,
    cache: ObservationCache,
    *,
    jobs: bool = False,
    gpu_available: bool = True,
    ledger: PipelineLedger | None = None,
) -> WorkflowPorts:
    """The handler's ports; ``ledger``: the watcher's (its own memory when there is none)."""
    return WorkflowPorts(
        backend=backend,
        options=RenderOptions(gpu_available=gpu_available),
        jobs=jobs,
        namespace=NS,
        sink=sink,
        cache=cache,
        ledger=ledger if ledger is not None else MemoryLedger(),
    )


def worker_settings(redis_url: str, namespace: str, **overrides: Any) -> WorkflowSettings:
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
        "environment": "dev",
        **overrides,
    }
    return WorkflowSettings(_env_file=None, **values)
