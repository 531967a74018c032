"""The handlers against a real MLflow server: runs, params, tags, idempotency, cancel, errors."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from mlflow.tracking import MlflowClient

from llmops_shared.events import (
    Envelope,
    ExperimentRunStatusUpdated,
    StatusEntity,
    decode_event,
    encode_event,
)
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_tracking.adapters.mlflow import MlflowTracking, mlflow_client
from llmops_tracking.adapters.redis_locks import RedisRunLocks
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import TrackingPorts, TrackingRejected, TrackingUnavailable

from integration.tracking.helpers import (
    CORRELATION_ID,
    cancelled,
    new_job_id,
    received,
    runs_of_job,
    submitted,
    unreachable_uri,
)
from support.mlflow_server import MlflowServer
from support.streams import details_of

pytestmark = pytest.mark.integration

SEED_PARAMS = {
    "job_type": "SFT",
    "model_family": "llama",
    "base_model_ref": "llama-3-8b-pretrain-v1",
    "dataset_ref.name": "enterprise-instruction",
    "dataset_ref.version": "v1",
    "dataset_ref.type": "sft_pair",
    "dataset_ref.storage_uri": "s3://llm-datasets/enterprise-instruction/v1",
    "hyperparams.lr": "0.0001",
    "hyperparams.batch_size": "4",
    "hyperparams.num_epochs": "3",
    "hyperparams.max_seq_len": "4096",
    "hyperparams.precision": "bf16",
    "method": "lora",
    "resources.gpus": "2",
    "resources.gpu_type": "A100",
    "resources.nodes": "1",
    "output.artifact_name": "llama-3-8b-sft-v1",
    "output.save_format": "hf",
    "use_gpu": "True",
}
"""The seed's TrainJobSpec (quickstart 5.1) as MLflow params."""


def seed_tags(job_id: str, *, model_id: str, dataset_id: str) -> dict[str, str]:
    return {
        "llmops.job_id": job_id,
        "llmops.job_type": "SFT",
        "llmops.model_family": "llama",
        "llmops.model_id": model_id,
        "llmops.base_model": "llama-3-8b-pretrain-v1",
        "llmops.dataset": "enterprise-instruction@v1",
        "llmops.dataset_id": dataset_id,
        "llmops.artifact_name": "llama-3-8b-sft-v1",
        "llmops.environment": "dev",
    }


def only_status(outputs: Sequence[Envelope]) -> ExperimentRunStatusUpdated:
    """The single status event a handler returned, as the gateway will decode it."""
    [envelope] = outputs
    decoded = decode_event(encode_event(envelope))
    assert decoded.envelope.source == "tracking"
    assert decoded.envelope.correlationid == CORRELATION_ID
    assert decoded.type == "llmops.status.experiment_run.updated.v1"
    return decoded.payload_as(ExperimentRunStatusUpdated)


async def test_submitted_creates_experiment_and_run_with_params_and_tags(
    ports: TrackingPorts, template: str, mlflow_reader: MlflowClient, mlflow_server: MlflowServer
) -> None:
    job_id, model_id, dataset_id = new_job_id(), "model-1", "dataset-1"
    event = received(submitted(job_id, model_id=model_id, dataset_id=dataset_id))

    status = only_status(await handle_training_event(event, ports))

    experiment_name = template.format(environment="dev", job_type="SFT")
    experiment = mlflow_reader.get_experiment_by_name(experiment_name)
    assert experiment is not None
    assert experiment.tags["llmops.managed"] == "true"
    [run] = runs_of_job(mlflow_reader, job_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.run_name == f"train-{job_id}"
    assert run.info.status == "RUNNING"
    assert run.data.params == SEED_PARAMS
    tags = seed_tags(job_id, model_id=model_id, dataset_id=dataset_id)
    assert {k: v for k, v in run.data.tags.items() if k.startswith("llmops.")} == tags

    assert status.entity == StatusEntity.EXPERIMENT_RUN
    assert status.entity_id == run.info.run_id
    assert status.phase == "Running"
    assert status.reporter == "tracking"
    assert status.reason is None
    assert details_of(status) == {
        "job_id": job_id,
        "experiment_id": experiment.experiment_id,
        "experiment_name": experiment_name,
        "run_url": (
            f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
        ),
        "backend": "mlflow",
        "params": SEED_PARAMS,
        "tags": tags,
    }


async def test_the_same_event_twice_makes_one_run(
    ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    event = received(submitted(job_id))

    first = only_status(await handle_training_event(event, ports))
    second = only_status(await handle_training_event(event, ports))

    [run] = runs_of_job(mlflow_reader, job_id)
    assert first.entity_id == second.entity_id == run.info.run_id
    assert details_of(first) == details_of(second)
    assert second.seq > first.seq


async def test_a_second_job_reuses_the_experiment(
    ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    one = only_status(await handle_training_event(received(submitted()), ports))
    two = only_status(await handle_training_event(received(submitted()), ports))

    assert details_of(one)["experiment_id"] == details_of(two)["experiment_id"]
    assert one.entity_id != two.entity_id


async def test_cancel_kills_the_run_and_reports_cancelled(
    ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    created = only_status(await handle_training_event(received(submitted(job_id)), ports))

    status = only_status(await handle_training_event(received(cancelled(job_id, "budget")), ports))

    run = mlflow_reader.get_run(created.entity_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["llmops.cancel_reason"] == "budget"
    assert status.entity_id == created.entity_id
    assert status.phase == "Cancelled"
    assert status.reason == "budget"
    assert details_of(status) == {
        **details_of(created),
        "tags": {**details_of(created)["tags"], "llmops.cancel_reason": "budget"},  # type: ignore[dict-item]
    }

    again = only_status(await handle_training_event(received(cancelled(job_id, "budget")), ports))
    assert again.phase == "Cancelled"
    assert mlflow_reader.get_run(created.entity_id).info.status == "KILLED"


async def test_cancel_of_a_finished_run_keeps_its_status(
    ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    created = only_status(await handle_training_event(received(submitted(job_id)), ports))
    mlflow_reader.set_terminated(created.entity_id, status="FINISHED")

    status = only_status(await handle_training_event(received(cancelled(job_id)), ports))

    assert status.phase == "Succeeded"
    assert status.reason == "cancel ignored: the run had already ended as FINISHED"
    assert mlflow_reader.get_run(created.entity_id).info.status == "FINISHED"


async def test_cancel_of_an_unknown_job_reports_nothing(ports: TrackingPorts) -> None:
    assert await handle_training_event(received(cancelled(new_job_id())), ports) == []


async def test_a_changed_spec_for_the_same_job_is_rejected(
    ports: TrackingPorts, mlflow_reader: MlflowClient
) -> None:
    job_id = new_job_id()
    await handle_training_event(received(submitted(job_id)), ports)

    with pytest.raises(TrackingRejected, match="Changing param values is not allowed") as caught:
        await handle_training_event(received(submitted(job_id, lr=0.5)), ports)

    assert isinstance(caught.value, NonRetryableError)
    [run] = runs_of_job(mlflow_reader, job_id)
    assert run.data.params["hyperparams.lr"] == "0.0001"


async def test_unreachable_mlflow_is_a_dependency_outage_and_fails_fast(
    locks: RedisRunLocks, template: str
) -> None:
    backend = MlflowTracking(mlflow_client(unreachable_uri(), max_retries=0, timeout_s=5))
    ports = TrackingPorts(
        backend=backend, locks=locks, environment="dev", experiment_name_template=template
    )

    started = time.monotonic()
    with pytest.raises(TrackingUnavailable, match="unavailable while tracking job") as caught:
        await handle_training_event(received(submitted()), ports)

    assert isinstance(caught.value, DependencyUnavailableError)
    assert time.monotonic() - started < 2.0
    with pytest.raises(TrackingUnavailable):
        await backend.ping()


async def test_ping_passes_against_a_live_server(mlflow_backend: MlflowTracking) -> None:
    await mlflow_backend.ping()


async def test_run_url_uses_the_ui_url_when_set(
    mlflow_server: MlflowServer, locks: RedisRunLocks, template: str
) -> None:
    backend = MlflowTracking(
        mlflow_client(mlflow_server.url, max_retries=0, timeout_s=10),
        ui_url="https://mlflow.example.com",
    )
    ports = TrackingPorts(
        backend=backend, locks=locks, environment="stg", experiment_name_template=template
    )

    status = only_status(await handle_training_event(received(submitted()), ports))

    exp, run = details_of(status)["experiment_id"], status.entity_id
    assert (
        details_of(status)["run_url"]
        == f"https://mlflow.example.com/#/experiments/{exp}/runs/{run}"
    )
    assert details_of(status)["experiment_name"] == template.format(
        environment="stg", job_type="SFT"
    )
