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
from mlflow.tracking import MlflowClient

from llmops_shared.client import GatewayError
from llmops_shared.events import DeadLetterEntry, Stream

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


def test_ctrl_c_stops_every_process(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    log = stack.log_text()
    assert "stack stopped" in log
    for name in ("gateway", "tracking", "mlflow"):
        assert f"{name} |" in log, f"no output from {name}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.gateway_url}/healthz", timeout=2)
