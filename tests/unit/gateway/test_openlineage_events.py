"""The OpenLineage run event a queued row stands for, built from the database: the run, the job,
the dataset version in, the model version out, the error of a FAIL. Every event built here
must pass the official schemas (``support.openlineage_receiver.event_errors``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from openlineage.client.serde import Serde
from pydantic import ValidationError

from llmops_gateway.config import GatewaySettings
from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    OpenLineageOutbox,
    TrainingJob,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.openlineage.events import (
    ERROR_LANGUAGE,
    PRODUCER,
    JobGone,
    Naming,
    run_event,
    run_id,
)
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

from support.openlineage_receiver import event_errors
from unit.gateway.folds import new_id

pytestmark = pytest.mark.unit

NAMING = Naming(job_namespace="llmops", dataset_namespace=None, model_namespace="mlflow")
AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
MODEL_URI = "s3://mlflow/1/5d2c7e1f/artifacts/model"


def add_job(sessions: SessionFactory, *, job_id: str | None = None, **columns: Any) -> str:
    values: dict[str, Any] = {"spec": dict(SEED_TRAIN_JOB_SPEC), "status": "Running", **columns}
    job = TrainingJob(id=job_id or new_id(), status_seq=0, created_at=utcnow(), **values)
    with sessions.begin() as session:
        session.add(job)
    return job.id


def add_version(
    sessions: SessionFactory, *, storage: str | None = "s3://data-lake/instructions"
) -> str:
    """A catalog dataset ``instructions`` and its version ``v1.1.0`` (stored under it)."""
    dataset = CatalogDataset(
        id=new_id(), name=f"instructions-{uuid.uuid4().hex[:6]}", type="sft", storage_uri=storage
    )
    version = DatasetVersion(
        id=new_id(),
        dataset_id=dataset.id,
        version="v1.1.0",
        storage_uri=None if storage is None else f"{storage}/v1.1.0",
        status="Succeeded",
        seq=0,
        created_at=utcnow(),
    )
    with sessions.begin() as session:
        session.add(dataset)
        session.flush()
        session.add(version)
    return version.id


def event_of(
    sessions: SessionFactory, job_id: str, event_type: str, naming: Naming = NAMING
) -> dict[str, Any]:
    """The event's JSON (as the client sends it), checked against the schemas."""
    row = OpenLineageOutbox(id=1, job_id=job_id, event_type=event_type, event_time=AT, attempts=0)
    with sessions() as session:
        event: dict[str, Any] = Serde.to_dict(run_event(session, row, naming))
    assert event_errors(event) == []
    return event


def test_a_start_names_the_run_the_job_and_the_pinned_dataset_version(
    sessions: SessionFactory,
) -> None:
    version_id = add_version(sessions)
    job_id = add_job(sessions, dataset_version_id=version_id)
    event = event_of(sessions, job_id, "START")

    assert event["eventType"] == "START"
    assert event["eventTime"] == "2026-03-01T12:30:00+00:00"
    assert event["producer"] == PRODUCER
    assert event["run"]["runId"] == job_id
    assert event["job"]["namespace"] == "llmops"
    assert event["job"]["name"] == "llama-3-8b-sft-v1"  # the artifact the job trains
    job_type = event["job"]["facets"]["jobType"]
    assert (job_type["processingType"], job_type["integration"], job_type["jobType"]) == (
        "BATCH",
        "LLMOPS",
        "TRAINING",
    )
    [source] = event["inputs"]
    assert source["namespace"] == "s3://data-lake"
    assert source["name"].startswith("instructions-")
    assert source["facets"]["version"]["datasetVersion"] == "v1.1.0"
    assert source["facets"]["dataSource"]["uri"] == "s3://data-lake/instructions/v1.1.0"
    assert source["facets"]["dataSource"]["name"] == "s3://data-lake"
    assert event["outputs"] == []
    assert "errorMessage" not in event["run"].get("facets", {})


def test_a_complete_has_the_registered_model_version_as_output(sessions: SessionFactory) -> None:
    job_id = add_job(
        sessions,
        status="Succeeded",
        dataset_version_id=add_version(sessions),
        registered_model_name="llama-3-8b-sft-v1",
        registered_model_version="3",
        model_storage_uri=MODEL_URI,
    )
    event = event_of(sessions, job_id, "COMPLETE")
    assert event["eventType"] == "COMPLETE"
    assert len(event["inputs"]) == 1
    [model] = event["outputs"]
    assert (model["namespace"], model["name"]) == ("mlflow", "llama-3-8b-sft-v1")
    assert model["facets"]["version"]["datasetVersion"] == "3"
    assert model["facets"]["dataSource"]["uri"] == MODEL_URI


def test_a_complete_without_a_registered_model_has_no_output(sessions: SessionFactory) -> None:
    job_id = add_job(sessions, status="Succeeded", dataset_version_id=add_version(sessions))
    assert event_of(sessions, job_id, "COMPLETE")["outputs"] == []


def test_a_fail_carries_the_jobs_reason(sessions: SessionFactory) -> None:
    reason = "step train failed: exit code 137 (OOMKilled)"
    job_id = add_job(sessions, status="Failed", reason=reason)
    error = event_of(sessions, job_id, "FAIL")["run"]["facets"]["errorMessage"]
    assert error["message"] == reason
    assert error["programmingLanguage"] == ERROR_LANGUAGE
    quiet = add_job(sessions, status="Failed", reason=None)
    assert event_of(sessions, quiet, "FAIL")["run"]["facets"]["errorMessage"]["message"]


def test_an_abort_is_a_valid_event_without_an_error(sessions: SessionFactory) -> None:
    job_id = add_job(sessions, status="Cancelled", reason="cancelled by ada")
    event = event_of(sessions, job_id, "ABORT")
    assert event["eventType"] == "ABORT"
    assert "errorMessage" not in event["run"].get("facets", {})


def test_a_job_id_that_is_not_a_uuid_gets_a_stable_uuid_run_id(sessions: SessionFactory) -> None:
    job_id = add_job(sessions, job_id="job-42")
    event = event_of(sessions, job_id, "START")
    assert event["run"]["runId"] == run_id("job-42") == run_id("job-42")
    assert uuid.UUID(event["run"]["runId"]).version == 5
    assert run_id("job-43") != run_id("job-42")


def test_without_an_artifact_name_the_job_is_named_by_its_id(sessions: SessionFactory) -> None:
    job_id = add_job(sessions, spec={})
    event = event_of(sessions, job_id, "START")
    assert event["job"]["name"] == f"training-job/{job_id}"
    assert event["inputs"] == []  # nor a dataset_ref to name


def test_an_unpinned_job_names_the_specs_dataset_ref(sessions: SessionFactory) -> None:
    job_id = add_job(sessions)  # an unknown dataset: no catalog version recorded
    [source] = event_of(sessions, job_id, "START")["inputs"]
    ref = SEED_TRAIN_JOB_SPEC["dataset_ref"]
    assert (source["namespace"], source["name"]) == ("s3://llm-datasets", ref["name"])
    assert source["facets"]["version"]["datasetVersion"] == ref["version"]
    assert source["facets"]["dataSource"]["uri"] == ref["storage_uri"]


def test_the_dataset_namespace_setting_and_local_paths(sessions: SessionFactory) -> None:
    pinned = add_job(sessions, dataset_version_id=add_version(sessions, storage="/srv/data/ds"))
    [local] = event_of(sessions, pinned, "START")["inputs"]
    assert local["namespace"] == "file"
    assert local["facets"]["dataSource"]["uri"] == "file:///srv/data/ds/v1.1.0"

    named = Naming(job_namespace="llmops", dataset_namespace="lake", model_namespace="mlflow")
    [source] = event_of(sessions, pinned, "START", named)["inputs"]
    assert source["namespace"] == "lake"
    unknown = add_job(sessions, dataset_version_id=add_version(sessions, storage=None))
    [nowhere] = event_of(sessions, unknown, "START")["inputs"]
    assert nowhere["namespace"] == "llmops"  # no location: the jobs' namespace
    assert "dataSource" not in nowhere["facets"]


def test_a_row_whose_job_is_gone_cannot_be_built(sessions: SessionFactory) -> None:
    row = OpenLineageOutbox(id=1, job_id="gone", event_type="START", event_time=AT, attempts=0)
    with sessions() as session, pytest.raises(JobGone):
        run_event(session, row, NAMING)


def settings(**values: Any) -> GatewaySettings:
    return GatewaySettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_naming_from_the_settings_keeps_credentials_out_of_the_model_namespace() -> None:
    assert Naming.of(settings()).model_namespace == "mlflow"
    tracked = settings(mlflow_tracking_uri="https://ada:secret@mlflow.example:8443/ml/?token=t")
    assert Naming.of(tracked).model_namespace == "https://mlflow.example:8443/ml"
    named = Naming.of(settings(openlineage_namespace="prod", openlineage_dataset_namespace="lake"))
    assert (named.job_namespace, named.dataset_namespace) == ("prod", "lake")


@pytest.mark.parametrize(
    "url",
    [
        "http://ada:secret@marquez:5000",
        "https://token@marquez.example",
        "https://marquez.example/?api_key=k",
        "ftp://marquez.example",
        "marquez:5000",
    ],
)
def test_the_url_refuses_credentials_and_other_schemes(url: str) -> None:
    with pytest.raises(ValidationError, match=r"OPENLINEAGE_URL|credentials"):
        settings(openlineage_url=url)


def test_the_url_is_optional_and_blank_means_unset() -> None:
    assert settings().openlineage_url is None
    assert settings(openlineage_url=" ").openlineage_url is None
    assert settings(openlineage_url="http://marquez:5000").openlineage_url == "http://marquez:5000"
