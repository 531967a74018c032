"""Folding the workflow worker's pipeline reports (entity id = the workflow name), and the
registered model a pipeline reports, kept on its training job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import pytest
from sqlalchemy import select

from llmops_gateway.db.models import TrainingJob, WorkflowPipeline
from llmops_gateway.db.session import SessionFactory
from llmops_shared.events import Phase, StatusEntity, StatusUpdated

from unit.gateway.folds import SEQ, count, fold, observed, report, seed_job, stored

pytestmark = pytest.mark.unit

MODEL_RUN_ID: Final = "5d2c7e1f0a9b4c3d8e7f6a5b4c3d2e1f"
STARTED: Final = "2026-01-02T03:04:05Z"
FINISHED: Final = "2026-01-02T04:00:00Z"


def pipeline_report(
    workflow: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> StatusUpdated:
    """A workflow worker's report with only the facts given."""
    return report(StatusEntity.PIPELINE, workflow, phase, seq, reason=reason, **details)


def full_report(job_id: str, phase: Phase, seq: int, **details: Any) -> StatusUpdated:
    """A report about ``train-<job_id>`` with the facts the Argo backend always sends."""
    body: dict[str, Any] = {
        "job_id": job_id,
        "workflow_name": f"train-{job_id}",
        "namespace": "llm-ops",
        "backend": "argo",
        **details,
    }
    return pipeline_report(f"train-{job_id}", phase, seq, **body)


def registered(version: str) -> dict[str, Any]:
    """``details.registered_model`` after the register stage."""
    return {
        "name": "llama-3-8b-sft-v1",
        "version": version,
        "run_id": MODEL_RUN_ID,
        "source": f"mlflow-artifacts:/1/{MODEL_RUN_ID}/artifacts/model",
        "storage_uri": f"s3://mlflow/1/{MODEL_RUN_ID}/artifacts/model-v{version}",
    }


def pipeline(sessions: SessionFactory, workflow: str) -> WorkflowPipeline:
    with sessions() as session:
        found = session.scalars(
            select(WorkflowPipeline).where(WorkflowPipeline.workflow_name == workflow)
        ).one()
    return found


def node(name: str, phase: str) -> dict[str, Any]:
    return {"name": name, "phase": phase, "started_at": STARTED}


def test_the_first_report_creates_the_pipeline(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    assert fold(sessions, full_report(job_id, Phase.RUNNING, SEQ, started_at=STARTED))
    created = pipeline(sessions, f"train-{job_id}")
    assert (created.status, created.job_id, created.namespace, created.backend) == (
        "Running",
        job_id,
        "llm-ops",
        "argo",
    )
    assert (created.seq, created.observed_at) == (SEQ, observed(SEQ))
    assert created.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_status_and_reason_are_the_reported_phase_and_message(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ))
    fold(sessions, pipeline_report("wf-1", Phase.FAILED, SEQ + 1, reason="train: exit code 2"))
    failed = pipeline(sessions, "wf-1")
    assert (failed.status, failed.reason) == ("Failed", "train: exit code 2")


def test_a_stale_pipeline_report_is_ignored(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ + 2))
    assert not fold(sessions, pipeline_report("wf-1", Phase.PENDING, SEQ + 1, namespace="other"))
    kept = pipeline(sessions, "wf-1")
    assert (kept.status, kept.namespace, kept.seq) == ("Running", None, SEQ + 2)


def test_one_row_per_workflow(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ))
    fold(sessions, pipeline_report("wf-1", Phase.SUCCEEDED, SEQ + 1))
    fold(sessions, pipeline_report("wf-2", Phase.RUNNING, SEQ))
    assert count(sessions, WorkflowPipeline) == 2


def test_missing_or_empty_facts_keep_the_stored_ones(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    manifest = {"kind": "Workflow", "metadata": {"name": f"train-{job_id}"}}
    fold(sessions, full_report(job_id, Phase.RUNNING, SEQ, started_at=STARTED, manifest=manifest))
    fold(sessions, pipeline_report(f"train-{job_id}", Phase.RUNNING, SEQ + 1, namespace=""))
    kept = pipeline(sessions, f"train-{job_id}")
    assert (kept.job_id, kept.namespace, kept.backend, kept.manifest) == (
        job_id,
        "llm-ops",
        "argo",
        manifest,
    )
    assert kept.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_end_time_is_recorded_when_reported(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions)
    fold(sessions, full_report(job_id, Phase.RUNNING, SEQ, started_at=STARTED))
    fold(sessions, full_report(job_id, Phase.SUCCEEDED, SEQ + 1, finished_at=FINISHED))
    done = pipeline(sessions, f"train-{job_id}")
    assert (done.started_at, done.finished_at) == (
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC),
    )


def test_progress_is_recorded(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ, progress={"done": 2, "total": 5}))
    recorded = pipeline(sessions, "wf-1")
    assert (recorded.progress_done, recorded.progress_total) == (2, 5)


def test_progress_zero_of_zero_does_not_reset_a_stored_progress(sessions: SessionFactory) -> None:
    """0/0 is what the worker sends before it has observed the workflow."""
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ, progress={"done": 2, "total": 5}))
    fold(
        sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ + 1, progress={"done": 0, "total": 0})
    )
    kept = pipeline(sessions, "wf-1")
    assert (kept.progress_done, kept.progress_total) == (2, 5)


def test_progress_zero_of_zero_is_recorded_when_nothing_is_stored(
    sessions: SessionFactory,
) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.PENDING, SEQ, progress={"done": 0, "total": 0}))
    first = pipeline(sessions, "wf-1")
    assert (first.progress_done, first.progress_total) == (0, 0)


def test_progress_is_merged_key_by_key(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ, progress={"done": 2, "total": 5}))
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ + 1, progress={"done": 3}))
    merged = pipeline(sessions, "wf-1")
    assert (merged.progress_done, merged.progress_total) == (3, 5)


def test_a_training_workflow_is_linked_to_its_job(sessions: SessionFactory) -> None:
    """A report without ``job_id`` about ``train-<id>`` of an existing job."""
    job_id = seed_job(sessions)
    fold(sessions, pipeline_report(f"train-{job_id}", Phase.RUNNING, SEQ))
    assert pipeline(sessions, f"train-{job_id}").job_id == job_id


def test_a_training_workflow_of_an_unknown_job_is_not_linked(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("train-no-such-job", Phase.RUNNING, SEQ))
    assert pipeline(sessions, "train-no-such-job").job_id is None


def test_nodes_are_replaced_as_a_whole(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ, nodes=[node("prepare", "Running")]))
    fold(
        sessions,
        pipeline_report(
            "wf-1",
            Phase.RUNNING,
            SEQ + 1,
            nodes=[node("prepare", "Succeeded"), node("train", "Running")],
        ),
    )
    nodes = pipeline(sessions, "wf-1").nodes or []
    assert [(n["name"], n["phase"]) for n in nodes] == [
        ("prepare", "Succeeded"),
        ("train", "Running"),
    ]


def test_a_report_without_nodes_keeps_the_stored_ones(sessions: SessionFactory) -> None:
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ, nodes=[node("prepare", "Running")]))
    fold(sessions, pipeline_report("wf-1", Phase.RUNNING, SEQ + 1, nodes=[]))
    nodes = pipeline(sessions, "wf-1").nodes or []
    assert [n["name"] for n in nodes] == ["prepare"]


def test_the_registered_model_is_recorded_on_the_job(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, full_report(job_id, Phase.SUCCEEDED, SEQ + 1, registered_model=registered("1")))
    job = stored(sessions, TrainingJob, job_id)
    assert (
        job.registered_model_name,
        job.registered_model_version,
        job.model_run_id,
        job.model_source,
        job.model_storage_uri,
        job.registered_model_seq,
    ) == (
        "llama-3-8b-sft-v1",
        "1",
        MODEL_RUN_ID,
        f"mlflow-artifacts:/1/{MODEL_RUN_ID}/artifacts/model",
        f"s3://mlflow/1/{MODEL_RUN_ID}/artifacts/model-v1",
        SEQ + 1,
    )


def test_a_pipeline_report_does_not_touch_the_jobs_status(sessions: SessionFactory) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, full_report(job_id, Phase.SUCCEEDED, SEQ + 1, registered_model=registered("1")))
    job = stored(sessions, TrainingJob, job_id)
    assert (job.status, job.status_seq) == ("Running", SEQ)


def test_a_report_without_a_registered_model_keeps_the_recorded_one(
    sessions: SessionFactory,
) -> None:
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    fold(sessions, full_report(job_id, Phase.RUNNING, SEQ + 1, registered_model=registered("1")))
    fold(sessions, full_report(job_id, Phase.SUCCEEDED, SEQ + 2))
    job = stored(sessions, TrainingJob, job_id)
    assert (job.registered_model_version, job.registered_model_seq) == ("1", SEQ + 1)


def test_an_older_registered_model_does_not_replace_a_newer_one(sessions: SessionFactory) -> None:
    """Two pipelines report on one job: the job keeps its own order."""
    job_id = seed_job(sessions, status="Running", status_seq=SEQ)
    newer = pipeline_report(
        "retry-of-train", Phase.SUCCEEDED, SEQ + 5, job_id=job_id, registered_model=registered("2")
    )
    older = pipeline_report(
        f"train-{job_id}", Phase.SUCCEEDED, SEQ + 3, job_id=job_id, registered_model=registered("1")
    )
    fold(sessions, newer)
    fold(sessions, older)
    job = stored(sessions, TrainingJob, job_id)
    assert (job.registered_model_version, job.registered_model_seq) == ("2", SEQ + 5)
