"""``migrate experiments-to-mlflow`` end to end: the gateway (relay and status consumer), the
tracking worker through ``serve_with_flags`` (what ``python -m llmops_tracking`` runs), a real
MLflow server, real Redis and the gateway's database; the command runs through typer's
``CliRunner`` as ``llmops migrate experiments-to-mlflow`` would.

The built-in run records are made the way production makes them: jobs submitted through the
API while the tracking worker runs with ``EXPERIMENT_TRACKING_ENABLED=false``. The flag is then
turned on through ``PUT /integrations/configs`` and the running worker switches to MLflow.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from mlflow.tracking import MlflowClient
from pydantic import SecretStr

from llmops_gateway.db.models import ExperimentRun, TrainingJob
from llmops_gateway.domain.status import apply_status_event
from llmops_shared.events import (
    ExperimentRunStatusUpdated,
    Phase,
    StatusEntity,
    decode_event,
    encode_event,
    new_event,
    new_seq,
    status_updated,
)
from llmops_shared.heartbeat import read_heartbeats
from llmops_shared.streams import DeadLetter, move_to_dead_letters
from llmops_shared.worker import serve_with_flags
from llmops_tracking.app import serve
from llmops_tracking.config import TrackingSettings

from integration.gateway.harness import API, Gateway, auth, job_report, seed_request
from integration.tracking.helpers import FAST_CONSUMER, runs_of_job
from support import scripts
from support.mlflow_server import MlflowServer
from support.scripts import logs_on_stderr  # noqa: F401 - an autouse fixture
from support.streams import wait_until
from support.workers import in_process

pytestmark = pytest.mark.integration

COMMAND = ["migrate", "experiments-to-mlflow"]


@dataclass
class Scene:
    """The gateway, the tracking worker's settings, the command's environment."""

    gateway: Gateway
    mlflow: MlflowClient
    tracking: TrackingSettings
    env: dict[str, str]

    async def migrate(self, *args: str) -> Result:
        """The command, in a thread: the gateway and the worker keep running meanwhile."""
        return await scripts.run_script([*COMMAND, *args], self.env)

    async def migrate_json(self, *args: str, code: int = 0) -> dict[str, Any]:
        return scripts.json_document(await self.migrate("--json", *args), code)

    def tracking_worker(self) -> AbstractAsyncContextManager[None]:
        """The tracking worker as ``python -m llmops_tracking`` runs it (flags followed)."""
        return in_process(
            lambda stop: serve_with_flags(serve, self.tracking, stop=stop), stop_timeout_s=30
        )

    async def wait_backend(self, backend: str) -> None:
        """Until the (one) tracking worker's heartbeat says it runs ``backend``."""

        async def running() -> bool:
            beats = await read_heartbeats(
                self.gateway.redis, namespace=self.gateway.namespace, service="tracking"
            )
            return [b.facts.get("backend") for b in beats if b.alive] == [backend]

        await wait_until(running, timeout_s=20)

    async def set_tracking(self, enabled: bool) -> None:
        await scripts.set_flag(self.gateway.client, "experiment_tracking", enabled, headers=auth())

    async def submit(self) -> str:
        response = await self.gateway.submit(seed_request())
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def runs(self) -> dict[str, ExperimentRun]:
        with self.gateway.state.sessions() as session:
            return {run.job_id: run for run in session.scalars(sa.select(ExperimentRun))}

    async def wait_runs(self, expected: dict[str, tuple[str, str]]) -> dict[str, ExperimentRun]:
        """Until each job's record has ``(backend, status)``."""

        async def reached() -> bool:
            runs = self.runs()
            return all(
                job in runs and (runs[job].backend, runs[job].status) == state
                for job, state in expected.items()
            )

        await wait_until(reached, timeout_s=20)
        return self.runs()

    def jobs(self) -> dict[str, TrainingJob]:
        with self.gateway.state.sessions() as session:
            return {job.id: job for job in session.scalars(sa.select(TrainingJob))}

    async def wait_migration_error(self, job_id: str, seen: int = 0) -> dict[str, Any]:
        """Until the record holds a failed move answered after ``seen`` (a seq)."""

        async def answered() -> bool:
            error = self.runs()[job_id].tags.get("llmops.migration_error")
            return isinstance(error, dict) and error["seq"] > seen

        await wait_until(answered, timeout_s=20)
        error: dict[str, Any] = self.runs()[job_id].tags["llmops.migration_error"]
        return error

    def outbox_rows(self) -> int:
        return self.gateway.count("outbox")

    def mlflow_runs(self, job_ids: list[str]) -> dict[str, list[Any]]:
        return {job: runs_of_job(self.mlflow, job) for job in job_ids}


@pytest.fixture
async def scene(
    start_gateway: Callable[..., Any],
    gateway_db_url: str,
    redis_url: str,
    mlflow_server: MlflowServer,
) -> Scene:
    gateway: Gateway = await start_gateway()
    await gateway.register_base_model()
    tracking = TrackingSettings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=SecretStr(redis_url),
        stream_namespace=gateway.namespace,
        environment="dev",
        health_port=0,
        log_json=False,
        heartbeat_interval_s=0.2,
        consumer=FAST_CONSUMER,
        experiment_tracking_enabled=False,  # the built-in backend until the flag says otherwise
        mlflow_tracking_uri=mlflow_server.url,
        experiment_name_template=f"migration-{uuid.uuid4().hex[:8]}/{{environment}}/{{job_type}}",
        polling_interval=3600,
    )
    env = scripts.script_env(gateway_db_url, redis_url, gateway.namespace)
    return Scene(gateway, MlflowClient(mlflow_server.url), tracking, env)


@pytest.mark.parametrize("gateway_db_url", ["postgresql"], indirect=True)
async def test_dry_run_then_migrate_then_nothing_is_left(scene: Scene) -> None:
    async with scene.tracking_worker():
        await scene.wait_backend("builtin")
        running, cancelled, succeeded = [await scene.submit() for _ in range(3)]
        response = await scene.gateway.client.post(
            f"{API}/training/jobs/{cancelled}/cancel",
            json={"reason": "superseded"},
            headers=auth(),
        )
        assert response.status_code == 202, response.text
        await scene.gateway.publish_status(job_report(succeeded, Phase.SUCCEEDED, new_seq()))
        before = await scene.wait_runs(
            {
                running: ("builtin", "Running"),
                cancelled: ("builtin", "Cancelled"),
                succeeded: ("builtin", "Succeeded"),  # the run record followed its job
            }
        )
        jobs = [running, cancelled, succeeded]
        assert before[cancelled].reason is not None
        assert "superseded" in before[cancelled].reason
        outbox = scene.outbox_rows()

        # --dry-run: the plan, and nothing else
        plan = await scene.migrate_json("--dry-run")
        assert plan["dry_run"] is True
        assert plan["experiment_tracking"] == {
            "enabled": True,
            "system": "mlflow",
            "source": "environment",
        }
        planned = {p["job_id"]: p for p in plan["planned"]}
        assert {job: planned[job]["run_status"] for job in jobs} == {
            running: "RUNNING",
            cancelled: "KILLED",
            succeeded: "FINISHED",  # job's own end
        }
        assert all(p["action"] == "migrate" for p in planned.values())
        assert planned[running]["experiment_name"] == before[running].experiment_name
        assert scene.outbox_rows() == outbox
        assert scene.mlflow_runs(jobs) == {job: [] for job in jobs}

        # the flag, turned on through the gateway, switches the running worker to MLflow
        await scene.set_tracking(True)
        await scene.wait_backend("mlflow")

        document = await scene.migrate_json("--timeout", "30")
        results = {r["job_id"]: r for r in document["results"]}
        assert {job: results[job]["outcome"] for job in jobs} == dict.fromkeys(jobs, "migrated")
        assert (document["migrated"], document["failed"], document["timed_out"]) == (3, 0, 0)
        assert sorted(document["queued"]) == sorted(jobs)

        after = scene.runs()
        mlflow_runs = scene.mlflow_runs(jobs)
        expected = {
            running: ("RUNNING", "Running"),
            cancelled: ("KILLED", "Cancelled"),
            succeeded: ("FINISHED", "Succeeded"),
        }
        jobs_now = scene.jobs()
        for job, (mlflow_status, phase) in expected.items():
            [run] = mlflow_runs[job]
            record = after[job]
            # the record's times, not the migration's: created -> start, the job's end -> end
            assert abs(run.info.start_time - epoch_ms(before[job].created_at)) <= 1
            if job == running:
                assert run.info.end_time is None
            else:
                assert abs(run.info.end_time - epoch_ms(jobs_now[job].updated_at)) <= 1
            assert run.info.status == mlflow_status
            assert run.data.params == before[job].params
            assert (
                run.data.tags.items()
                >= {
                    **before[job].tags,
                    "llmops.job_id": job,
                    "llmops.migrated_from": "builtin",
                }.items()
            )
            # the cancel's reason stays (and is in MLflow); the built-in note does not
            reason = before[job].reason if job == cancelled else None
            assert (record.backend, record.status, record.reason) == ("mlflow", phase, reason)
            assert run.data.tags.get("llmops.status_reason") == reason
            assert "llmops.migration_error" not in run.data.tags
            assert record.run_id == run.info.run_id == results[job]["run_id"]
            assert record.experiment_id == run.info.experiment_id
            assert record.tracking_url == (
                f"{scene.mlflow.tracking_uri}/#/experiments/{run.info.experiment_id}"
                f"/runs/{run.info.run_id}"
            )
            assert record.seq > before[job].seq
        outbox = scene.outbox_rows()

        # the second run finds nothing built-in and changes nothing
        again = await scene.migrate()
        assert again.exit_code == 0, again.output
        assert "nothing to migrate" in again.stderr
        assert scene.outbox_rows() == outbox
        assert {job: len(runs) for job, runs in scene.mlflow_runs(jobs).items()} == dict.fromkeys(
            jobs, 1
        )


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_requests_are_not_repeated_and_a_failed_move_is_retried(scene: Scene) -> None:
    async with scene.tracking_worker():
        await scene.wait_backend("builtin")
        job = await scene.submit()
        await scene.wait_runs({job: ("builtin", "Running")})
    outbox = scene.outbox_rows()

    # no worker: the request waits; asking again adds nothing (same event id)
    first = await scene.migrate_json("--no-wait")
    second = await scene.migrate_json("--no-wait")
    assert (first["queued"], first["already_requested"]) == ([job], [])
    assert (second["queued"], second["already_requested"]) == ([], [job])
    assert scene.outbox_rows() == outbox + 1

    before = scene.runs()[job]
    # the gateway's flag is on (its environment) but the worker still runs the built-in
    # backend (its own EXPERIMENT_TRACKING_ENABLED=false, no flag event yet): it refuses
    async with scene.tracking_worker():
        error = await scene.wait_migration_error(job)
        refused = (
            "migration to mlflow failed: experiment tracking is disabled "
            "(EXPERIMENT_TRACKING_ENABLED=false): enable it before migrating"
        )
        assert (error["reason"], error["target"]) == (refused, "mlflow")
        assert error["request_id"] == first["planned"][0]["event_id"]
        # the failed move is not the run's status: the record is unchanged but for that tag
        record = scene.runs()[job]
        assert (record.status, record.reason, record.seq, record.updated_at) == (
            before.status,
            before.reason,
            before.seq,
            before.updated_at,
        )
        # the command asks again (a new request: the last one failed), says why it failed,
        # and exits 1 listing the run
        failed = await scene.migrate_json("--timeout", "20", code=1)
        [result] = failed["results"]
        assert (result["outcome"], result["status"], result["reason"]) == (
            "failed",
            "Running",
            refused,
        )
        assert failed["queued"] == [job]
        assert scene.mlflow_runs([job]) == {job: []}

        await scene.set_tracking(True)
        await scene.wait_backend("mlflow")
        document = await scene.migrate_json("--timeout", "30")
        [result] = document["results"]
        assert (result["outcome"], result["status"], result["backend"]) == (
            "migrated",
            "Running",
            "mlflow",  # the failed move did not end the run
        )
        [run] = scene.mlflow_runs([job])[job]
        assert run.info.status == "RUNNING"
        assert "llmops.migration_error" not in run.data.tags
        record = scene.runs()[job]
        assert record.run_id == run.info.run_id
        assert "llmops.migration_error" not in record.tags  # the move succeeded

        again = await scene.migrate_json()
        assert (again["planned"], again["results"]) == ([], [])


def epoch_ms(moment: datetime) -> int:
    """MLflow's time of a DB timestamp (naive ones are UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def run_report(
    job_id: str, run_id: str, phase: Phase, seq: int, **details: Any
) -> ExperimentRunStatusUpdated:
    payload = status_updated(
        StatusEntity.EXPERIMENT_RUN,
        entity_id=run_id,
        phase=phase,
        reporter="tracking",
        details={"job_id": job_id, **details},
        seq=seq,
    )
    assert isinstance(payload, ExperimentRunStatusUpdated)
    return payload


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_the_fold_lets_a_move_win_over_the_builtin_record(
    start_gateway: Callable[..., Any],
) -> None:
    """A move to MLflow replaces backend, run id, experiment and URL even when its seq is not
    greater (another host's clock); a failed move never undoes one that succeeded."""
    gateway: Gateway = await start_gateway(consume_status=False)
    sessions = gateway.state.sessions
    job_id = str(uuid.uuid4())
    seq = new_seq()

    def fold(report: ExperimentRunStatusUpdated) -> bool:
        event = decode_event(encode_event(new_event(report, source="tracking")))
        return apply_status_event(sessions, event, consumer="gateway")

    builtin = {
        "backend": "builtin",
        "experiment_id": "builtin",
        "experiment_name": "e",
        "params": {"lr": "0.1"},
        "tags": {"llmops.job_id": job_id},
    }
    moved = {
        "backend": "mlflow",
        "experiment_id": "7",
        "experiment_name": "e",
        "run_url": "http://mlflow/#/experiments/7/runs/r1",
        "params": {"lr": "0.1"},
        "tags": {"llmops.migrated_from": "builtin"},
        "migration": {"outcome": "migrated", "target": "mlflow"},
    }
    failed = {"migration": {"outcome": "failed", "target": "mlflow"}}
    assert fold(run_report(job_id, f"builtin-{job_id}", Phase.RUNNING, seq, **builtin))
    assert fold(run_report(job_id, "r1", Phase.SUCCEEDED, seq - 1_000, **moved))
    assert not fold(run_report(job_id, f"builtin-{job_id}", Phase.FAILED, seq + 1, **failed))

    with sessions() as session:
        run = session.scalars(sa.select(ExperimentRun)).one()
    assert (run.backend, run.run_id, run.experiment_id, run.tracking_url, run.status) == (
        "mlflow",
        "r1",
        "7",
        "http://mlflow/#/experiments/7/runs/r1",
        "Succeeded",
    )
    assert run.seq == seq
    assert run.tags == {"llmops.job_id": job_id, "llmops.migrated_from": "builtin"}
    # an ordinary stale report is still ignored
    assert not fold(run_report(job_id, "r1", Phase.RUNNING, seq - 1, **moved | {"migration": {}}))


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_nothing_is_queued_while_experiment_tracking_is_off(scene: Scene) -> None:
    """A worker on the built-in backend would refuse every move: the command refuses first."""
    async with scene.tracking_worker():
        await scene.wait_backend("builtin")
        job = await scene.submit()
        await scene.wait_runs({job: ("builtin", "Running")})
    await scene.set_tracking(False)
    outbox = scene.outbox_rows()

    refused = await scene.migrate_json(code=1)
    assert refused["experiment_tracking"]["enabled"] is False
    assert "queued" not in refused
    assert [p["job_id"] for p in refused["planned"]] == [job]
    assert scene.outbox_rows() == outbox
    said = (await scene.migrate()).stderr
    assert "experiment_tracking is disabled in dev" in said
    assert 'PUT /llm-ops/v1/integrations/configs/dev/experiment_tracking {"enabled": true}' in (
        " ".join(said.split())
    )

    dry = await scene.migrate("--dry-run")  # a dry run still shows the plan, and the warning
    assert dry.exit_code == 0, dry.output
    assert "experiment_tracking is disabled in dev" in dry.stderr
    assert scene.outbox_rows() == outbox
    assert scene.runs()[job].status == "Running"


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_a_dead_lettered_request_is_reported_not_waited_for(scene: Scene) -> None:
    async with scene.tracking_worker():
        await scene.wait_backend("builtin")
        job = await scene.submit()
        await scene.wait_runs({job: ("builtin", "Running")})

    # published while no worker runs; then a consumer gives up on it (as after max_deliveries)
    first = await scene.migrate_json("--no-wait")
    [request_id] = [p["event_id"] for p in first["planned"]]
    redis = scene.gateway.redis
    stream = f"{scene.gateway.namespace}llmops.training"
    [(entry_id, fields)] = [
        (entry_id, fields)
        for entry_id, fields in await redis.xrange(stream)
        if json.loads(fields[b"event"])["id"] == request_id
    ]
    letter = DeadLetter(entry_id, fields[b"event"], "boom", "RuntimeError", 5, "max_deliveries")
    await move_to_dead_letters(redis, [letter], stream=stream, group="tracking", consumer="c1")
    [(letter_entry, _)] = await redis.xrange(f"{stream}.dlq")
    letter_id = f"llmops.training:{letter_entry.decode()}"

    started = time.monotonic()
    document = await scene.migrate_json("--timeout", "60", code=1)
    assert time.monotonic() - started < 30  # answered at once, not after --timeout
    assert document["already_requested"] == [job]
    [result] = document["results"]
    assert result["outcome"] == "dead_lettered"
    assert result["reason"] == (
        f"dead-lettered: replay it with `llmops dlq replay {letter_id}` after fixing the cause"
    )
    assert (document["dead_lettered"], document["timed_out"]) == (1, 0)
    assert scene.runs()[job].status == "Running"


@pytest.mark.parametrize("gateway_db_url", ["sqlite"], indirect=True)
async def test_a_failed_move_keeps_the_runs_status_and_reason(
    start_gateway: Callable[..., Any],
) -> None:
    """A Cancelled run whose move failed stays Cancelled with its reason (the failure is kept
    in ``llmops.migration_error``); the move that then succeeds keeps the reason too."""
    gateway: Gateway = await start_gateway(consume_status=False)
    sessions = gateway.state.sessions
    job_id = str(uuid.uuid4())
    seq = new_seq()
    reason = "cancelled by alice: wrong dataset"

    def fold(report: ExperimentRunStatusUpdated, reason: str | None = None) -> bool:
        report = report.model_copy(update={"reason": reason})
        event = decode_event(encode_event(new_event(report, source="tracking")))
        return apply_status_event(sessions, event, consumer="gateway")

    def record() -> ExperimentRun:
        with sessions() as session:
            run: ExperimentRun = session.scalars(sa.select(ExperimentRun)).one()
            return run

    builtin = {"backend": "builtin", "experiment_id": "builtin", "tags": {"llmops.job_id": job_id}}
    assert fold(run_report(job_id, f"builtin-{job_id}", Phase.CANCELLED, seq, **builtin), reason)
    before = record()

    def failed(request_id: str) -> dict[str, Any]:
        return {
            "migration": {
                "outcome": "failed",
                "target": "mlflow",
                "reason": f"migration to mlflow failed: {request_id} broke",
                "request_id": request_id,
            }
        }

    refusal = "migration to mlflow failed: r1 broke"
    assert fold(run_report(job_id, f"builtin-{job_id}", Phase.FAILED, seq + 5, **failed("r1")))
    after = record()
    assert (after.status, after.reason, after.seq, after.updated_at) == (
        "Cancelled",
        reason,
        seq,
        before.updated_at,
    )
    assert after.tags["llmops.migration_error"] == {
        "request_id": "r1",
        "reason": refusal,
        "target": "mlflow",
        "seq": seq + 5,
    }
    # an older request's answer arriving late does not replace the newer one
    assert not fold(run_report(job_id, f"builtin-{job_id}", Phase.FAILED, seq + 1, **failed("r0")))
    assert record().tags["llmops.migration_error"]["request_id"] == "r1"

    moved = {
        "backend": "mlflow",
        "experiment_id": "7",
        "run_url": "http://mlflow/#/experiments/7/runs/m1",
        "tags": {"llmops.migrated_from": "builtin", "llmops.status_reason": reason},
        "migration": {"outcome": "migrated", "target": "mlflow"},
    }
    assert fold(run_report(job_id, "m1", Phase.CANCELLED, seq + 10, **moved))
    run = record()
    assert (run.backend, run.run_id, run.status, run.reason) == (
        "mlflow",
        "m1",
        "Cancelled",
        reason,
    )
    assert "llmops.migration_error" not in run.tags
