"""Folding ``llmops.status`` into the read model: ordered by seq, idempotent per event id."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_gateway.domain.status import apply_status_event
from llmops_shared.events import (
    ExperimentRunStatusUpdated,
    Phase,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
    status_updated,
)

from integration.gateway.harness import API, Gateway, auth

pytestmark = pytest.mark.integration

RUN_ID = "3f1d2a7c9b104c8e9a516f1e0b6f3c9e"


def run_report(
    job_id: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> ExperimentRunStatusUpdated:
    """What the tracking worker publishes about a job's run."""
    body: dict[str, Any] = {
        "job_id": job_id,
        "experiment_id": "7",
        "experiment_name": "llama-3-8b-sft-v1",
        "run_url": f"http://mlflow.local/#/experiments/7/runs/{RUN_ID}",
        "backend": "mlflow",
        "params": {"job_type": "SFT", "hyperparams.lr": "0.0001", "method": "lora"},
        "tags": {"llmops.job_id": job_id},
        **details,
    }
    payload = status_updated(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=RUN_ID,
        phase=phase,
        reporter="tracking",
        reason=reason,
        details=body,
        seq=seq,
    )
    assert isinstance(payload, ExperimentRunStatusUpdated)
    return payload


async def submitted_job(gateway: Gateway) -> str:
    await gateway.register_base_model()
    response = await gateway.submit()
    assert response.status_code == 202
    job_id: str = response.json()["id"]
    return job_id


async def test_no_run_yet_is_a_404_with_a_clear_message(gateway: Gateway) -> None:
    job_id = await submitted_job(gateway)
    response = await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")
    assert response.status_code == 404
    assert response.json() == {"detail": f"no experiment run reported yet for job {job_id}"}
    unknown = await gateway.client.get(f"{API}/training/jobs/nope/experiment-run")
    assert unknown.json() == {"detail": "training job nope not found"}


async def test_run_report_shows_up_and_stale_seq_is_ignored(gateway: Gateway) -> None:
    job_id = await submitted_job(gateway)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=2_000))
    await gateway.publish_status(
        run_report(job_id, Phase.FAILED, seq=1_000, reason="late, older report")
    )
    await gateway.wait_processed(2)

    response = await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["jobId"] == job_id
    assert run["runId"] == RUN_ID
    assert run["experimentId"] == "7"
    assert run["experimentName"] == "llama-3-8b-sft-v1"
    assert run["backend"] == "mlflow"
    assert run["status"] == "Running"
    assert run["trackingUrl"].endswith(RUN_ID)
    assert run["params"]["hyperparams.lr"] == "0.0001"
    # No MLFLOW_TRACKING_URI in these settings: no metrics, and the answer says why.
    assert run["metrics"] == {}
    assert "MLFLOW_TRACKING_URI" in run["metricsError"]


async def test_killed_run_is_cancelled_and_keeps_its_params(gateway: Gateway) -> None:
    job_id = await submitted_job(gateway)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    killed = status_updated(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=RUN_ID,
        phase=Phase.CANCELLED,
        reporter="tracking",
        reason="job cancelled",
        details={"job_id": job_id, "backend": "mlflow"},
        seq=2_000,
    )
    await gateway.publish_status(killed)
    await gateway.wait_processed(2)

    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == "Cancelled"
    assert run["params"]["method"] == "lora"


async def test_a_builtin_cancel_report_with_empty_params_keeps_the_submitted_ones(
    gateway: Gateway,
) -> None:
    job_id = await submitted_job(gateway)
    builtin_id = f"builtin-{job_id}"
    created = run_report(job_id, Phase.RUNNING, seq=1_000, backend="builtin", run_url=None)
    await gateway.publish_status(created.model_copy(update={"entity_id": builtin_id}))
    cancelled = status_updated(  # the shape the tracking worker's built-in backend sends
        StatusEntity.EXPERIMENT_RUN,
        entity_id=builtin_id,
        phase=Phase.CANCELLED,
        reporter="tracking",
        reason="job cancelled",
        details={
            "job_id": job_id,
            "experiment_id": "builtin",
            "experiment_name": None,
            "run_url": None,
            "backend": "builtin",
            "params": {},
            "tags": {"llmops.job_id": job_id},
        },
        seq=2_000,
    )
    await gateway.publish_status(cancelled)
    await gateway.wait_processed(2)

    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == "Cancelled"
    assert run["params"]["method"] == "lora"
    assert run["experimentName"] == "llama-3-8b-sft-v1"
    assert run["trackingUrl"] is None


async def test_builtin_backend_has_no_tracking_url(gateway: Gateway) -> None:
    job_id = await submitted_job(gateway)
    report = run_report(
        job_id, Phase.RUNNING, seq=1_000, backend="builtin", run_url=None, metrics={"loss": 0.5}
    )
    await gateway.publish_status(report)
    await gateway.wait_processed(1)
    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["backend"] == "builtin"
    assert run["trackingUrl"] is None
    assert run["metrics"] == {"loss": 0.5}
    assert run["metricsError"] is None


async def test_a_redelivered_event_changes_nothing(gateway: Gateway) -> None:
    job_id = await submitted_job(gateway)
    first = await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    await gateway.wait_processed(1)

    # The same event id again, through the stream: the consumer's idempotency skips it ...
    await gateway.publish_envelope(first)
    # ... and through the handler directly (the SQL ledger, what protects a crash between the
    # SQL commit and the Redis ack), even with different content under the same id.
    forged = new_event(
        run_report(job_id, Phase.FAILED, seq=9_000, reason="must not apply"),
        source="tests",
        event_id=first.id,
    )
    event = decode_event(encode_event(forged))
    assert apply_status_event(gateway.state.sessions, event, consumer="gateway") is False
    # A later, genuinely new report proves the consumer has moved past the duplicate.
    await gateway.publish_status(run_report(job_id, Phase.SUCCEEDED, seq=3_000))
    await gateway.wait_processed(2)

    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == "Succeeded"
    assert gateway.count("processed_events") == 2
    assert gateway.count("experiment_runs") == 1


async def test_job_status_reports_fold_into_the_job_and_cancel_wins_over_older(
    gateway: Gateway,
) -> None:
    job_id = await submitted_job(gateway)
    running = status_updated(
        StatusEntity.JOB, entity_id=job_id, phase=Phase.RUNNING, reporter="workflow", seq=1_000
    )
    await gateway.publish_status(running)
    await gateway.wait_processed(1)
    job = (await gateway.client.get(f"{API}/training/jobs/{job_id}")).json()
    assert job["status"] == "Running"

    cancelled = await gateway.client.post(f"{API}/training/jobs/{job_id}/cancel", headers=auth())
    assert cancelled.status_code == 202
    # A report observed before the cancel (old seq) must not resurrect the job.
    late = status_updated(
        StatusEntity.JOB, entity_id=job_id, phase=Phase.RUNNING, reporter="workflow", seq=2_000
    )
    await gateway.publish_status(late)
    await gateway.wait_processed(2)
    job = (await gateway.client.get(f"{API}/training/jobs/{job_id}")).json()
    assert job["status"] == "Cancelled"


@pytest.mark.parametrize("phase", [Phase.SUCCEEDED, Phase.FAILED])
async def test_a_job_that_ends_closes_its_run_unless_tracking_says_newer(
    gateway: Gateway, phase: Phase
) -> None:
    """The pipeline ends the MLflow run (register: FINISHED, a failing stage: FAILED) and no
    service reports that: the run record follows its job, and an older run report cannot
    reopen it, while a newer one (an observation after the job's end) still wins."""
    job_id = await submitted_job(gateway)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    ended = status_updated(
        StatusEntity.JOB, entity_id=job_id, phase=phase, reporter="workflow", seq=3_000,
        reason="train failed (exit code 2)" if phase == Phase.FAILED else None,
    )  # fmt: skip
    await gateway.publish_status(ended)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=2_000))  # older
    await gateway.wait_processed(3)
    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == phase.value
    assert run["params"]["hyperparams.lr"] == "0.0001"  # the record is kept, only closed

    await gateway.publish_status(run_report(job_id, Phase.CANCELLED, seq=4_000))
    await gateway.wait_processed(4)
    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == "Cancelled"


async def test_a_run_report_folded_after_its_job_ended_is_closed_too(gateway: Gateway) -> None:
    """Reports arrive in any order: the run's creation (observed first) folded after the
    job's end still ends Succeeded."""
    job_id = await submitted_job(gateway)
    ended = status_updated(
        StatusEntity.JOB, entity_id=job_id, phase=Phase.SUCCEEDED, reporter="workflow", seq=3_000
    )
    await gateway.publish_status(ended)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    await gateway.wait_processed(2)
    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert (run["status"], run["runId"]) == ("Succeeded", RUN_ID)


async def test_a_cancelled_job_leaves_its_run_to_tracking(gateway: Gateway) -> None:
    """A cancel is tracking's to report (it kills the MLflow run): the job's Cancelled does
    not close the run record by itself."""
    job_id = await submitted_job(gateway)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    report = status_updated(
        StatusEntity.JOB, entity_id=job_id, phase=Phase.CANCELLED, reporter="workflow", seq=2_000
    )
    await gateway.publish_status(report)
    await gateway.wait_processed(2)
    job = (await gateway.client.get(f"{API}/training/jobs/{job_id}")).json()
    assert job["status"] == "Cancelled"
    run = (await gateway.client.get(f"{API}/training/jobs/{job_id}/experiment-run")).json()
    assert run["status"] == "Running"


async def test_github_syncs_model_version_reports_are_folded_too(gateway: Gateway) -> None:
    """They were the last reports the gateway ignored (the lineage's Git link)."""
    job_id = await submitted_job(gateway)
    other = status_updated(
        StatusEntity.MODEL_VERSION, entity_id="model/1", phase=Phase.RUNNING, reporter="sync"
    )
    await gateway.publish_status(other)
    await gateway.publish_status(run_report(job_id, Phase.RUNNING, seq=1_000))
    await gateway.wait_processed(2)
    assert gateway.count("model_versions") == 1
