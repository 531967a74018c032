"""End to end: `llmops up` runs the real processes; a job sent over REST becomes an MLflow run.

Real Redis (the test session's, under a private stream namespace), a real MLflow server on
SQLite started by the stack, the gateway and the tracking worker as separate processes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from llmops_shared.client import GatewayError
from llmops_shared.events import DeadLetterEntry, Stream
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from support.argo_schema import schema_errors as argo_schema_errors
from support.kserve_crd import schema_errors
from support.stack import BASE_MODEL, RunningStack, eventually, example_body, local_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with local_stack(redis_url, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def base_model(stack: RunningStack) -> dict[str, Any]:
    with stack.client() as client:
        return client.add_model(BASE_MODEL)


@pytest.mark.usefixtures("base_model")
def test_a_submitted_job_becomes_an_mlflow_run_with_flattened_params(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        assert job["status"] == "Pending"
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")

    assert run["backend"] == "mlflow"
    assert run["trackingUrl"].startswith(stack.mlflow_url)
    mlflow_run = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"])
    assert mlflow_run.data.params["hyperparams.lr"] == "0.0001"
    assert mlflow_run.data.params["hyperparams.max_seq_len"] == "4096"
    assert mlflow_run.data.params["dataset_ref.name"] == "enterprise-instruction"
    assert mlflow_run.data.tags["llmops.job_id"] == job["id"]
    assert run["params"]["method"] == "lora"


@pytest.mark.usefixtures("base_model")
def test_cancel_kills_the_run(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")
        client.cancel_training_job(job["id"])

        def killed() -> bool:
            status = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"]).info.status
            return status == "KILLED"

        eventually(killed, timeout_s=30, what="the MLflow run KILLED")
        reported = eventually(
            lambda: (r := client.experiment_run(job["id"])) and r["status"] == "Cancelled" and r,
            timeout_s=30,
            what="the cancelled status in the gateway",
        )
    assert reported["runId"] == run["runId"]


@pytest.mark.usefixtures("base_model")
def test_a_too_long_sequence_is_refused_with_the_seed_message(stack: RunningStack) -> None:
    body = example_body()
    body["trainJobSpec"]["hyperparams"]["max_seq_len"] = 16384
    with stack.client() as client, pytest.raises(GatewayError) as refused:
        client.submit_training_job(body)
    assert refused.value.status_code == 422
    assert any(
        "SFT max_seq_len must be <= base_model.max_position_embeddings" in line
        for line in refused.value.messages()
    )


@pytest.mark.usefixtures("base_model")
def test_a_bad_event_on_the_stream_is_dead_lettered_and_tracking_keeps_serving(
    stack: RunningStack,
) -> None:
    stream = f"{stack.namespace}{Stream.TRAINING}"
    stack.redis.xadd(stream, {"event": '{"specversion": "1.0", "type": "nope"}'})

    def dead_letter() -> DeadLetterEntry | None:
        for _, fields in stack.redis.xrange(f"{stream}.dlq"):
            letter = DeadLetterEntry.from_fields(fields)
            if letter.group == "tracking":
                return letter
        return None

    letter = eventually(dead_letter, timeout_s=30, what="a dead letter from tracking")
    assert "invalid envelope" in letter.reason
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the next run")


def test_an_endpoint_becomes_a_valid_manifest_is_promoted_and_deleted(
    stack: RunningStack,
) -> None:
    """Serving with the local default backend: validated YAML in the stack's manifests dir."""
    with stack.client() as client:
        model = client.add_model(
            {"name": "llama-3-8b-sft-v1", "family": "llama", "max_position_embeddings": 8192}
        )
        endpoint = client.create_endpoint(
            {
                "modelId": model["id"],
                "route": "/test-model",
                "environment": "dev",
                "deploymentSpec": SEED_DEPLOYMENT_SPEC,
            }
        )
        deployment = eventually(
            lambda: (d := client.deployment(endpoint["id"])) and d["status"] == "Ready" and d,
            timeout_s=30,
            what="the deployment reported Ready",
        )
        assert deployment["backend"] == "manifests"
        path = stack.data_dir / "manifests" / "llm-ops-dev" / f"{endpoint['name']}.yaml"
        manifest = yaml.safe_load(path.read_text())
        assert manifest == deployment["manifest"]
        assert manifest["kind"] == "InferenceService"
        assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
        assert schema_errors(manifest) == []

        client.promote_endpoint(endpoint["id"])
        eventually(
            lambda: (
                "canaryTrafficPercent" not in yaml.safe_load(path.read_text())["spec"]["predictor"]
            ),
            timeout_s=30,
            what="the canary promoted in the manifest",
        )

        client.delete_endpoint(endpoint["id"])
        eventually(
            lambda: client.endpoint(endpoint["id"]) is None,
            timeout_s=30,
            what="the endpoint removed after the worker reported Deleted",
        )
        assert not path.exists()


@pytest.mark.usefixtures("base_model")
def test_a_job_becomes_a_valid_argo_workflow_manifest_shown_as_its_pipeline(
    stack: RunningStack,
) -> None:
    """Workflow with the local default backend: the Workflow YAML, and the pipeline in the API."""
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        pipeline_url = f"{stack.gateway_url}/llm-ops/v1/workflows/pipelines/train-{job['id']}"

        def reported() -> dict[str, Any] | None:
            response = httpx.get(pipeline_url, timeout=5)
            return response.json() if response.status_code == 200 else None

        pipeline = eventually(reported, timeout_s=30, what="the pipeline reported")
        assert pipeline["backend"] == "manifests"
        assert pipeline["jobId"] == job["id"]
        path = stack.data_dir / "workflows" / pipeline["namespace"] / f"train-{job['id']}.yaml"
        workflow = yaml.safe_load(path.read_text())
        assert workflow["kind"] == "Workflow"
        assert workflow == pipeline["manifest"]
        assert argo_schema_errors(workflow) == []
        assert client.training_job(job["id"])["pipeline"]["id"] == f"train-{job['id']}"


def test_ctrl_c_stops_every_process(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    log = stack.log_text()
    assert "stack stopped" in log
    for name in ("gateway", "tracking", "serving", "workflow", "mlflow"):
        assert f"{name} |" in log, f"no output from {name}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.gateway_url}/healthz", timeout=2)
