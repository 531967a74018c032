"""A running gateway for tests: the real app (lifespan included) on a real database and Redis.

Requests go through httpx's ASGI transport (no socket); the relay and the status consumer run
as in production, on a stream namespace of the test's own.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa
from fastapi import FastAPI

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.models import TrainingJob
from llmops_gateway.state import GatewayState
from llmops_shared.events import (
    Envelope,
    Event,
    JobStatusUpdated,
    Phase,
    PipelineStatusUpdated,
    StatusEntity,
    StatusUpdated,
    Stream,
    encode_event,
    new_event,
    new_seq,
    status_updated,
)
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC, SEED_TRAIN_JOB_SPEC
from llmops_shared.streams import EVENT_FIELD, Publisher
from llmops_shared.streams.publisher import stream_key

from support.streams import read_events, wait_until

API = "/llm-ops/v1"
API_KEY = "test-key-primary"
OTHER_API_KEY = "test-key-secondary"
BASE_MODEL = {
    "name": "llama-3-8b-pretrain-v1",
    "family": "llama",
    "maxPositionEmbeddings": 8192,
    "hfArchitecture": "LlamaForCausalLM",
}


TRAINED_MODEL = {
    "name": "llama-3-8b-sft-v1",
    "family": "llama",
    "maxPositionEmbeddings": 8192,
    "hfArchitecture": "LlamaForCausalLM",
}
"""The catalog entry of the seed's trained model (what the seed's DeploymentSpec serves)."""


def serving_request(model_id: str, **changes: Any) -> dict[str, Any]:
    """The seed's section 5.2 request for catalog model ``model_id``, top-level fields
    replaced (``deploymentSpec`` included)."""
    body = {"modelId": model_id, "route": "/test-model", "environment": "dev",
            "deploymentSpec": copy.deepcopy(SEED_DEPLOYMENT_SPEC)}  # fmt: skip
    return {**body, **changes}


def seed_request(**spec_changes: Any) -> dict[str, Any]:
    """The seed's section 5.1 request, with top-level spec fields replaced."""
    spec = {**SEED_TRAIN_JOB_SPEC, **spec_changes}
    return {"modelId": "model-1", "datasetId": "dataset-1", "jobType": "finetune",
            "trainJobSpec": spec}  # fmt: skip


def workflow_name(job_id: str) -> str:
    """The workflow worker's deterministic name for a job's pipeline."""
    return f"train-{job_id}"


def pipeline_report(
    job_id: str, phase: Phase, seq: int, /, *, reason: str | None = None, **details: Any
) -> PipelineStatusUpdated:
    """What the workflow worker publishes about a job's pipeline: ``details`` are added to
    ``job_id``, ``workflow_name``, ``namespace`` and ``backend`` (``key=None`` drops one)."""
    name = workflow_name(job_id)
    body: dict[str, Any] = {"job_id": job_id, "workflow_name": name, "namespace": "llm-ops",
                            "backend": "argo", **details}  # fmt: skip
    payload = status_updated(
        StatusEntity.PIPELINE,
        entity_id=name,
        phase=phase,
        reporter="workflow",
        reason=reason,
        details={k: v for k, v in body.items() if v is not None},
        seq=seq,
    )
    assert isinstance(payload, PipelineStatusUpdated)
    return payload


def job_report(
    job_id: str, phase: Phase, seq: int, *, reason: str | None = None
) -> JobStatusUpdated:
    """What the workflow worker publishes about the job next to each pipeline report."""
    payload = status_updated(
        StatusEntity.JOB,
        entity_id=job_id,
        phase=phase,
        reporter="workflow",
        reason=reason,
        seq=seq,
    )
    assert isinstance(payload, JobStatusUpdated)
    return payload


MODEL_RUN_ID = "5d2c7e1f0a9b4c3d8e7f6a5b4c3d2e1f"
MODEL_STORAGE_URI = f"s3://mlflow/1/{MODEL_RUN_ID}/artifacts/model"
"""Where the register stage's model version is (mlflow-artifacts: resolved to the store)."""


def registered_model(name: str, **changes: Any) -> dict[str, Any]:
    """``details.registered_model`` as the workflow worker reports it after ``register``."""
    return {
        "name": name,
        "version": "1",
        "run_id": MODEL_RUN_ID,
        "source": f"mlflow-artifacts:/1/{MODEL_RUN_ID}/artifacts/model",
        "storage_uri": MODEL_STORAGE_URI,
        **changes,
    }


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


NO_CREDENTIAL: dict[str, str] = {"Authorization": ""}
"""Headers that drop the test client's default credential."""


@dataclass
class Gateway:
    """The app under test and what a test needs around it."""

    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings
    redis: aioredis.Redis

    @property
    def state(self) -> GatewayState:
        state: GatewayState = self.app.state.gateway
        return state

    @property
    def namespace(self) -> str:
        return self.settings.stream_namespace

    def count(self, table: str) -> int:
        with self.state.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    async def register_base_model(self, **changes: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"{API}/catalog/models", json={**BASE_MODEL, **changes}, headers=auth()
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def submit(
        self, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"{API}/training/jobs",
            json=body or seed_request(),
            headers={**auth(), **(headers or {})},
        )

    async def training_events(self) -> list[Event]:
        return await read_events(self.redis, f"{self.namespace}{Stream.TRAINING}")

    async def wait_for_training_events(self, count: int) -> list[Event]:
        async def enough() -> bool:
            return len(await self.training_events()) >= count

        await wait_until(enough, timeout_s=10)
        return await self.training_events()

    async def register_trained_model(self, **changes: Any) -> dict[str, Any]:
        return await self.register_base_model(**{**TRAINED_MODEL, **changes})

    async def create_endpoint(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"{API}/serving/endpoints", json=body, headers={**auth(), **(headers or {})}
        )

    async def serving_events(self) -> list[Event]:
        return await read_events(self.redis, f"{self.namespace}{Stream.SERVING}")

    async def wait_for_serving_events(self, count: int) -> list[Event]:
        async def enough() -> bool:
            return len(await self.serving_events()) >= count

        await wait_until(enough, timeout_s=10)
        return await self.serving_events()

    async def publish_status(
        self, payload: StatusUpdated, *, event_id: str | None = None
    ) -> Envelope:
        """What a worker does: put a status report on the (namespaced) status stream."""
        envelope = new_event(
            payload, source="tests", correlation_id="corr-status", event_id=event_id
        )
        await Publisher(self.redis, namespace=self.namespace).publish(envelope)
        return envelope

    async def publish_unchecked_status(self, payload: StatusUpdated, **details: Any) -> Envelope:
        """What a broken publisher does: ``payload``'s event with ``details`` set to values
        its model refuses, put on the status stream as they are (nothing validates them)."""
        envelope = new_event(payload, source="tests", correlation_id="corr-status")
        event = json.loads(encode_event(envelope))
        event["data"]["details"].update(details)
        stream = stream_key(self.namespace, Stream.STATUS)
        await self.redis.xadd(stream, {EVENT_FIELD: json.dumps(event)})
        return envelope

    async def publish_envelope(self, envelope: Envelope) -> None:
        await Publisher(self.redis, namespace=self.namespace).publish(envelope)

    async def submitted_job(self) -> str:
        """Register the seed's base model and submit the seed's job; its id."""
        await self.register_base_model()
        response = await self.submit()
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def artifact_of(self, job_id: str) -> str:
        """The job's ``output.artifact_name`` (what its register stage names the model)."""
        with self.state.sessions() as session:
            job = session.get(TrainingJob, job_id)
            assert job is not None
            name: str = job.spec["output"]["artifact_name"]
        return name

    async def report_trained(
        self,
        job_id: str,
        *,
        registered: dict[str, Any] | None = None,
        register: bool = True,
        backend: str = "argo",
    ) -> None:
        """What the workflow worker reports when a job's pipeline finished: the pipeline
        Succeeded, with ``details.registered_model`` (``registered``, by default the job's
        artifact at :data:`MODEL_STORAGE_URI`; none with ``register=False``: an older pipeline
        or the GitOps backend), and the job Succeeded. Returns once both are folded."""
        details: dict[str, Any] = {}
        if register:
            model = registered or registered_model(self.artifact_of(job_id))
            details["registered_model"] = model
        seq = new_seq()
        before = self.count("processed_events")
        report = pipeline_report(job_id, Phase.SUCCEEDED, seq, backend=backend, **details)
        await self.publish_status(report)
        await self.publish_status(job_report(job_id, Phase.SUCCEEDED, seq))
        await self.wait_processed(before + 2)

    async def wait_processed(self, count: int) -> None:
        """Until the status consumer has recorded ``count`` events in its SQL ledger."""

        async def done() -> bool:
            return self.count("processed_events") >= count

        await wait_until(done, timeout_s=10)


def new_id() -> str:
    return str(uuid.uuid4())
