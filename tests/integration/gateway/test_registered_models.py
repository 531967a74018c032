"""Closing the training loop: the model a job's pipeline registered, folded from the workflow
worker's reports onto the job (``registeredModel``), and an endpoint serving the job's artifact
given exactly those files (``storageUri``), on SQLite and PostgreSQL with real Redis."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from llmops_gateway.db.models import ServingDeployment
from llmops_gateway.moves.serving import KSERVE, plan
from llmops_shared.events import (
    DeadLetterEntry,
    DeploymentRequested,
    Phase,
    StatusEntity,
    status_updated,
)

from integration.gateway.harness import (
    API,
    MODEL_RUN_ID,
    MODEL_STORAGE_URI,
    Gateway,
    auth,
    job_report,
    pipeline_report,
    registered_model,
    serving_request,
)
from support.streams import wait_until

pytestmark = pytest.mark.integration

JOBS = f"{API}/training/jobs"
ENDPOINTS = f"{API}/serving/endpoints"
ARTIFACT = "llama-3-8b-sft-v1"
"""The seed job's output.artifact_name, which the seed's DeploymentSpec serves."""
SEQ = 1_767_225_600_000_000_000
SECOND = 1_000_000_000
KEY = "registered_model"


async def job(gateway: Gateway, job_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{JOBS}/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fold(gateway: Gateway, *reports: Any) -> None:
    """Publish worker reports and wait until the gateway folded every one."""
    before = gateway.count("processed_events")
    for report in reports:
        await gateway.publish_status(report)
    await gateway.wait_processed(before + len(reports))


def shown(**changes: Any) -> dict[str, Any]:
    """``registeredModel`` of the job view for :func:`registered_model` with ``changes``."""
    model = registered_model(ARTIFACT, **changes)
    return {"name": model["name"], "version": model["version"], "runId": model["run_id"],
            "source": model["source"], "storageUri": model["storage_uri"]}  # fmt: skip


# --- folding --------------------------------------------------------------------------------


async def test_the_registered_model_is_recorded_on_the_job_from_pipeline_reports(
    gateway: Gateway,
) -> None:
    job_id = await gateway.submitted_job()
    assert (await job(gateway, job_id))["registeredModel"] is None

    await fold(gateway, pipeline_report(job_id, Phase.RUNNING, SEQ))  # train is running
    assert (await job(gateway, job_id))["registeredModel"] is None

    after_register = pipeline_report(
        job_id, Phase.RUNNING, SEQ + SECOND, **{KEY: registered_model(ARTIFACT)}
    )
    await fold(gateway, after_register)
    view = await job(gateway, job_id)
    assert view["registeredModel"] == shown()
    assert view["registeredModel"]["runId"] == MODEL_RUN_ID
    assert view["status"] == "Pending"  # the job's status follows the job reports only
    assert view["pipeline"]["status"] == "Running"

    # an older report (delivered late) with another model changes nothing
    late = pipeline_report(
        job_id, Phase.RUNNING, SEQ + SECOND // 2, **{KEY: registered_model(ARTIFACT, version="0")}
    )
    # the next report without it keeps it
    finished = pipeline_report(job_id, Phase.SUCCEEDED, SEQ + 2 * SECOND)
    await fold(gateway, late, finished, job_report(job_id, Phase.SUCCEEDED, SEQ + 2 * SECOND))
    view = await job(gateway, job_id)
    assert view["registeredModel"] == shown()
    assert (view["status"], view["pipeline"]["status"]) == ("Succeeded", "Succeeded")

    # a newer one does change it (a stage re-run registered a new version)
    uri = "s3://mlflow/1/other/artifacts/model"
    newer = pipeline_report(
        job_id,
        Phase.SUCCEEDED,
        SEQ + 3 * SECOND,
        **{KEY: registered_model(ARTIFACT, version="2", storage_uri=uri)},
    )
    await fold(gateway, newer)
    assert (await job(gateway, job_id))["registeredModel"] == shown(version="2", storage_uri=uri)
    [listed] = (await gateway.client.get(JOBS)).json()["items"]
    assert listed["registeredModel"] == shown(version="2", storage_uri=uri)


async def test_the_job_keeps_its_own_order_across_pipelines(gateway: Gateway) -> None:
    """Two pipelines reporting on one job (a re-run under another workflow name): a report
    older than the one the job's model came from does not replace it, though it is the
    first report of its own pipeline."""
    job_id = await gateway.submitted_job()
    await fold(
        gateway,
        pipeline_report(job_id, Phase.SUCCEEDED, SEQ + SECOND, **{KEY: registered_model(ARTIFACT)}),
    )
    rerun = status_updated(
        StatusEntity.PIPELINE,
        entity_id=f"rerun-{job_id}",
        phase=Phase.SUCCEEDED,
        reporter="workflow",
        details={"job_id": job_id, KEY: registered_model(ARTIFACT, version="0")},
        seq=SEQ,
    )
    await fold(gateway, rerun)
    assert gateway.count("workflow_pipelines") == 2  # the re-run's pipeline is recorded
    assert (await job(gateway, job_id))["registeredModel"] == shown()


async def test_a_model_version_is_optional_without_mlflow(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    plain = {"name": ARTIFACT, "storage_uri": "/srv/llmops/models/" + job_id}
    await fold(gateway, pipeline_report(job_id, Phase.SUCCEEDED, SEQ, **{KEY: plain}))
    assert (await job(gateway, job_id))["registeredModel"] == {
        "name": ARTIFACT,
        "version": None,
        "runId": None,
        "source": None,
        "storageUri": "/srv/llmops/models/" + job_id,
    }


MALFORMED = [
    pytest.param(
        "a model",
        "details.registered_model: Input should be a valid dictionary or instance of "
        "RegisteredModel",
        id="not-an-object",
    ),
    pytest.param(
        {"name": ARTIFACT},
        "details.registered_model.storage_uri: Field required",
        id="no-storage-uri",
    ),
    pytest.param(
        {"name": ARTIFACT, "storage_uri": "models/relative"},
        "details.registered_model.storage_uri: String should match pattern "
        "'^(?:[A-Za-z][A-Za-z0-9+.-]*:\\S+|/\\S*)$'",
        id="not-a-uri",
    ),
    pytest.param(
        {"name": "", "storage_uri": MODEL_STORAGE_URI},
        "details.registered_model.name: String should have at least 1 character",
        id="empty-name",
    ),
]


@pytest.mark.parametrize(("value", "reason"), MALFORMED)
async def test_a_malformed_registered_model_is_dead_lettered(
    gateway: Gateway, value: Any, reason: str
) -> None:
    job_id = await gateway.submitted_job()

    # the workflow worker cannot even build such a report...
    with pytest.raises(ValueError, match=re.escape(reason.partition(": ")[2])):
        pipeline_report(job_id, Phase.SUCCEEDED, SEQ, **{KEY: value})

    # ... and one published by another system is refused when decoded, never retried: the
    # consumer dead-letters it at once, and nothing of it is kept
    valid = pipeline_report(job_id, Phase.SUCCEEDED, SEQ)
    envelope = await gateway.publish_unchecked_status(valid, **{KEY: value})
    dlq = f"{gateway.namespace}llmops.status.dlq"

    async def dead_lettered() -> bool:
        return bool(await gateway.redis.xlen(dlq))

    await wait_until(dead_lettered, timeout_s=10)
    [(_, fields)] = await gateway.redis.xrange(dlq)
    entry = DeadLetterEntry.from_fields(cast("dict[bytes, bytes]", fields))
    assert envelope.id in entry.event
    assert entry.reason == (f"invalid payload for llmops.status.pipeline.updated.v1: data.{reason}")
    assert gateway.count("workflow_pipelines") == 0
    assert (await job(gateway, job_id))["registeredModel"] is None


# --- serving exactly the trained artifact ----------------------------------------------------


async def test_an_endpoint_serves_the_model_its_producing_job_registered(
    gateway: Gateway,
) -> None:
    job_id = await gateway.submitted_job()
    await gateway.report_trained(job_id)
    model = await gateway.register_trained_model()

    response = await gateway.create_endpoint(serving_request(model["id"]))
    assert response.status_code == 202, response.text
    endpoint = response.json()
    assert endpoint["storageUri"] == MODEL_STORAGE_URI
    assert (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json() == endpoint
    [event] = await gateway.wait_for_serving_events(1)
    payload = event.payload_as(DeploymentRequested)
    assert payload.storage_uri == MODEL_STORAGE_URI  # the worker renders it as storageUri
    with gateway.state.sessions() as session:
        row = session.get(ServingDeployment, endpoint["id"])
        assert row is not None
        assert row.storage_uri == MODEL_STORAGE_URI


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.RUNNING])
async def test_the_artifact_of_an_unfinished_job_cannot_be_deployed_yet(
    gateway: Gateway, phase: Phase
) -> None:
    job_id = await gateway.submitted_job()
    if phase == Phase.RUNNING:
        await fold(gateway, job_report(job_id, Phase.RUNNING, SEQ))
    model = await gateway.register_trained_model()
    body = serving_request(model["id"])
    body["deploymentSpec"]["model_family"] = "mistral"  # every broken rule is reported at once

    response = await gateway.create_endpoint(body)

    assert response.status_code == 422, response.text
    errors = {error["ctx"]["rule"]: error for error in response.json()["detail"]}
    assert set(errors) == {"deployment_family_match", "model_ref_registered"}
    error = errors["model_ref_registered"]
    assert error["loc"] == ["body", "deploymentSpec", "model_ref"]
    assert error["type"] == "spec_rule"
    assert error["msg"] == (
        f"model_ref '{ARTIFACT}' is the artifact of training job {job_id}, which is "
        f"{phase.value}: deploy it once the job has Succeeded and registered the model"
    )
    assert gateway.count("serving_deployments") == 0
    assert gateway.count("outbox WHERE event_type LIKE 'llmops.serving.%'") == 0
    assert await gateway.serving_events() == []


@pytest.mark.parametrize("backend", ["manifests", "job"])
async def test_a_job_that_registered_nothing_leaves_the_location_to_the_serving_worker(
    gateway: Gateway, backend: str
) -> None:
    """The GitOps manifests backend or the built-in Jobs (no output parameters): Succeeded
    without a registered model. The endpoint is created as before; the serving worker's
    template applies."""
    job_id = await gateway.submitted_job()
    await gateway.report_trained(job_id, register=False, backend=backend)
    model = await gateway.register_trained_model()

    response = await gateway.create_endpoint(serving_request(model["id"]))
    assert response.status_code == 202, response.text
    assert response.json()["storageUri"] is None
    [event] = await gateway.wait_for_serving_events(1)
    assert event.payload_as(DeploymentRequested).storage_uri is None


@pytest.mark.parametrize("backend", ["argo", "local"])
async def test_a_succeeded_job_whose_pipeline_reported_no_model_is_not_deployed_by_guess(
    gateway: Gateway, backend: str
) -> None:
    """Argo and the local backend report what register created; a job Succeeded there
    without it (an unreadable record) must not be served from a location guessed by name."""
    job_id = await gateway.submitted_job()
    await gateway.report_trained(job_id, register=False, backend=backend)
    model = await gateway.register_trained_model()

    response = await gateway.create_endpoint(serving_request(model["id"]))

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["ctx"]["rule"] == "model_ref_registered"
    assert error["msg"] == (
        f"model_ref '{ARTIFACT}' is the artifact of training job {job_id}, which Succeeded but "
        f"its {backend} pipeline reported no registered model version: see the job's pipeline "
        "(register's model-version record)"
    )
    assert gateway.count("serving_deployments") == 0


async def test_the_newest_succeeded_job_is_served_while_a_retrain_runs(gateway: Gateway) -> None:
    """A second job writing the same artifact is still running: the endpoint serves what the
    Succeeded one registered (the producing job prefers Succeeded), not a refusal."""
    first = await gateway.submitted_job()
    await gateway.report_trained(first)
    retrain = (await gateway.submit()).json()["id"]
    await fold(gateway, job_report(retrain, Phase.RUNNING, SEQ))
    model = await gateway.register_trained_model()

    response = await gateway.create_endpoint(serving_request(model["id"]))
    assert response.status_code == 202, response.text
    assert response.json()["storageUri"] == MODEL_STORAGE_URI


async def test_a_failed_or_cancelled_job_produced_nothing_to_wait_for(gateway: Gateway) -> None:
    job_id = await gateway.submitted_job()
    await fold(gateway, job_report(job_id, Phase.FAILED, SEQ, reason="train: OOMKilled"))
    cancelled = (await gateway.submit()).json()["id"]
    cancel = await gateway.client.post(f"{JOBS}/{cancelled}/cancel", headers=auth())
    assert cancel.status_code == 202, cancel.text
    model = await gateway.register_trained_model()

    response = await gateway.create_endpoint(serving_request(model["id"]))
    assert response.status_code == 202, response.text  # no producing job: catalog rules only
    assert response.json()["storageUri"] is None


async def test_a_move_between_serving_formats_keeps_serving_the_registered_artifact(
    gateway: Gateway,
) -> None:
    """``migrate serving-to-kserve`` re-requests the endpoint in the other format: the
    artifact is the one the current object serves, and when that object carries no
    storage-uri annotation, the endpoint's own (the producing job's registered model)."""
    job_id = await gateway.submitted_job()
    await gateway.report_trained(job_id)
    model = await gateway.register_trained_model()
    endpoint = (await gateway.create_endpoint(serving_request(model["id"]))).json()
    deployment = {"kind": "Deployment", "metadata": {"name": endpoint["name"]}}  # no annotation
    await fold(
        gateway,
        status_updated(
            StatusEntity.DEPLOYMENT,
            entity_id=endpoint["id"],
            phase=Phase.READY,
            reporter="serving",
            details={"backend": "deployment", "manifest": deployment},
            seq=SEQ,
        ),
    )
    with gateway.state.sessions() as session:
        [planned] = plan(session, target=KSERVE)
    assert planned.skipped is None
    assert planned.request is not None
    assert planned.request.storage_uri == MODEL_STORAGE_URI
