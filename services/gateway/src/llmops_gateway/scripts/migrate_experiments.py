"""``migrate experiments-to-mlflow``: move the built-in experiment runs to MLflow.

The gateway plans (:mod:`llmops_gateway.domain.experiment_migration`), queues one
``ExperimentMigrationRequested`` per run in its outbox and publishes it; the tracking worker,
running on MLflow, creates (or reuses) each job's MLflow run from what the built-in record holds
and reports it; the gateway's status consumer folds that report into the record (backend
``mlflow``, the run id, experiment and URL). The command waits for those reports (``--wait``)
by reading the records. Running it again finds nothing built-in and changes nothing; running it
while the first requests are still in flight asks for nothing new (same event ids). A request
still in the outbox from an earlier run is looked up in ``llmops.training``'s dead letters: one
that was dead-lettered is reported ``dead_lettered`` with the letter to replay (``llmops dlq
replay <id>``), not waited for.

Experiment tracking must be on in the environment (a tracking worker on the built-in backend
refuses every move): the command checks the effective ``experiment_tracking`` flag and queues
nothing while it is off.

Exit codes: 0 nothing to do, dry run, queued (``--no-wait``), or every run migrated; 1 some run
failed, was dead-lettered, could not be migrated, was not answered within ``--timeout``, or the
flag is off; 2 bad options.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Annotated, Any, Final

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from llmops_gateway.domain.experiment_migration import (
    TARGET,
    PlannedRun,
    RunOutcome,
    outcomes,
    plan,
    queue,
)
from llmops_gateway.domain.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.domain.move_requests import Queued
from llmops_gateway.scripts import moves
from llmops_gateway.scripts.context import JsonOutput, ScriptContext, script_context, table_of
from llmops_shared.events import IntegrationArea, Stream
from llmops_shared.streams.connection import async_redis
from llmops_shared.streams.dead_letters import list_dead_letters

Planned = tuple[EffectiveConfig, list[PlannedRun], Queued[PlannedRun] | None]
"""What one plan-and-queue transaction found: the flag, the plan, the requests queued."""

DEAD_LETTERS_SCANNED: Final = 10_000
"""How many of ``llmops.training``'s newest dead letters are searched for a request."""


def _skipped_row(run: PlannedRun) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "outcome": "skipped",
        "status": run.status,
        "reason": run.skipped,
        "backend": "builtin",
        "run_id": run.run_id,
        "experiment_id": None,
        "tracking_url": None,
    }


RUNS: moves.Moves[PlannedRun, RunOutcome] = moves.Moves(
    what="experiment runs",
    noun="run",
    target=TARGET,
    destination=TARGET,
    worker="tracking worker",
    id_field="job_id",
    outcomes=outcomes,
    skipped_row=_skipped_row,
    counted=("migrated", "failed", "dead_lettered", "timed_out", "skipped"),
    columns={
        "job id": "job_id",
        "outcome": "outcome",
        "status": "status",
        "run id": "run_id",
        "tracking url": "tracking_url",
        "reason": "reason",
    },
)


def experiments_to_mlflow(
    dry_run: moves.DryRun = False,
    job_id: Annotated[
        list[str] | None,
        typer.Option("--job-id", metavar="ID", help="Only this job's run (repeat for several)."),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            metavar="ENV",
            help="dev | stg | prod: the environment whose tracking flag is checked and whose "
            "runs move (their llmops.environment tag). Default: the gateway's ENVIRONMENT.",
        ),
    ] = None,
    json_output: JsonOutput = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait until the tracking worker has answered for every run.",
        ),
    ] = True,
    timeout: Annotated[
        float,
        typer.Option(min=0, metavar="S", help="Seconds to wait for the answers (with --wait)."),
    ] = 300.0,
) -> None:
    """Move built-in experiment runs to MLflow (idempotent; --dry-run shows the plan)."""
    with script_context(json_output=json_output) as ctx:
        env = ctx.environment(environment or ctx.settings.environment)
        correlation_id = f"migrate-experiments-to-{TARGET}-{uuid.uuid4().hex[:12]}"

        def plan_and_queue(session: Session) -> Planned:
            flag = effective_config(session, ctx.settings, env, IntegrationArea.EXPERIMENT_TRACKING)
            planned = plan(session, job_ids=job_id or (), environment=env)
            queued: Queued[PlannedRun] | None = None
            if planned and flag.enabled and not dry_run:
                queued = queue(session, planned, correlation_id=correlation_id)
            return flag, planned, queued

        flag, planned, queued = moves.queue_requests(ctx, plan_and_queue)
        document = RUNS.plan_document(env, dry_run, flag, planned)
        table = _plan_table(planned, env)
        if moves.done_before_queueing(
            ctx,
            RUNS,
            document,
            planned,
            queued,
            dry_run=dry_run,
            scope=moves.scope(env, "job", job_id),
            table=table,
            flag=flag,
            flag_off=_flag_off,
        ):
            return
        assert queued is not None
        letters = _dead_letters(ctx, [run.event_id for run in queued.already_requested])
        runs = dataclasses.replace(RUNS, outcomes=_outcomes_with(letters)) if letters else RUNS
        moves.carry_out(ctx, runs, document, planned, queued, table, wait=wait, timeout=timeout)


def _flag_off(ctx: ScriptContext, flag: EffectiveConfig) -> None:
    ctx.err.print(
        escape(
            f"experiment_tracking is disabled in {flag.environment} ({flag.source}): the "
            "tracking worker runs the built-in backend and refuses to move runs to MLflow. "
            "Turn it on first: PUT /llm-ops/v1/integrations/configs/"
            f'{flag.environment}/experiment_tracking {{"enabled": true}}'
        ),
        style="yellow",
    )


def _dead_letters(ctx: ScriptContext, event_ids: Collection[str]) -> dict[str, str]:
    """Request id -> dead letter id, for the requests among ``event_ids`` (already in the
    outbox, so published earlier) that ``llmops.training``'s consumers dead-lettered."""
    found = ctx.redis_url() if event_ids else None
    if found is None:
        return {}
    url = found[0]

    async def scan() -> dict[str, str]:
        redis = async_redis(url)
        try:
            letters = await list_dead_letters(
                redis,
                namespace=ctx.settings.stream_namespace,
                stream=Stream.TRAINING,
                limit=DEAD_LETTERS_SCANNED,
            )
        finally:
            await redis.aclose()
        found: dict[str, str] = {}
        for letter in letters:
            event_id = (letter.event or {}).get("id")
            if isinstance(event_id, str) and event_id in event_ids and event_id not in found:
                found[event_id] = letter.id
        return found

    return asyncio.run(scan())


def _outcomes_with(
    letters: dict[str, str],
) -> Callable[[Session, Sequence[PlannedRun]], list[RunOutcome]]:
    """The outcome reader, with each dead-lettered request (``letters``: request id -> dead
    letter id) reported ``dead_lettered`` instead of waited for, unless the record says the run
    moved or failed meanwhile (the letter was replayed)."""

    def read(session: Session, runs: Sequence[PlannedRun]) -> list[RunOutcome]:
        results = outcomes(session, runs)
        for index, (run, result) in enumerate(zip(runs, results, strict=True)):
            letter = letters.get(run.event_id)
            if letter is not None and result.outcome == "pending":
                results[index] = dataclasses.replace(
                    result,
                    outcome="dead_lettered",
                    reason=(
                        f"dead-lettered: replay it with `llmops dlq replay {letter}` after "
                        "fixing the cause"
                    ),
                )
        return results

    return read


def _plan_table(planned: list[PlannedRun], environment: str) -> Table:
    return table_of(
        f"built-in experiment runs to move to {TARGET} ({environment})",
        ("job id", "experiment", "status", "job status", "MLflow status", "action"),
        [
            (
                run.job_id,
                run.experiment_name,
                run.status,
                run.job_status,
                run.run_status,
                f"skip: {run.skipped}" if run.skipped else "migrate",
            )
            for run in planned
        ],
    )
