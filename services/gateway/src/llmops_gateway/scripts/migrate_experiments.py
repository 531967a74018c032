"""``migrate experiments-to-mlflow``: move the built-in experiment runs to MLflow.

The gateway plans (:mod:`llmops_gateway.domain.experiment_migration`), queues one
``ExperimentMigrationRequested`` per run in its outbox and publishes it; the tracking worker,
running on MLflow, creates (or reuses) each job's MLflow run from what the built-in record holds
and reports it; the gateway's status consumer folds that report into the record (backend
``mlflow``, the run id, experiment and URL). The command waits for those reports (``--wait``)
by reading the records. Running it again finds nothing built-in and changes nothing; running it
while the first requests are still in flight asks for nothing new (same event ids).

Exit codes: 0 nothing to do, dry run, queued (``--no-wait``), or every run migrated; 1 some run
failed, could not be migrated, or was not answered within ``--timeout``; 2 bad options.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from llmops_gateway.domain.experiment_migration import (
    TARGET,
    PlannedRun,
    RunOutcome,
    outcomes,
    plan,
    queue,
)
from llmops_gateway.domain.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.scripts import moves
from llmops_gateway.scripts.context import JsonOutput, ScriptContext, script_context, table_of
from llmops_shared.events import IntegrationArea


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
    counted=("migrated", "failed", "timed_out", "skipped"),
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
        for attempt in range(2):
            try:
                with ctx.sessions.begin() as session:
                    flag = effective_config(
                        session, ctx.settings, env, IntegrationArea.EXPERIMENT_TRACKING
                    )
                    planned = plan(session, job_ids=job_id or (), environment=env)
                    queued = None
                    if planned and not dry_run:
                        queued = queue(session, planned, correlation_id=correlation_id)
                break
            except IntegrityError:
                # another run queued the same request ids meanwhile: they are there now
                if attempt:
                    raise
        document = RUNS.plan_document(env, dry_run, flag, planned)
        if not planned:
            RUNS.nothing_to_move(ctx, document, moves.scope(env, "job", job_id))
            return
        _warn_if_disabled(ctx, flag)
        if queued is None:  # dry run
            ctx.emit(document, _plan_table(planned, env))
            ctx.err.print(RUNS.dry_run_note(planned))
            return
        table = _plan_table(planned, env)
        moves.carry_out(ctx, RUNS, document, planned, queued, table, wait=wait, timeout=timeout)


def _warn_if_disabled(ctx: ScriptContext, flag: EffectiveConfig) -> None:
    if flag.enabled:
        return
    ctx.err.print(
        f"[yellow]experiment_tracking is disabled in {flag.environment} ({flag.source}): a "
        "tracking worker on the built-in backend answers each request Failed. Turn it on "
        f"first: PUT /llm-ops/v1/integrations/configs/{flag.environment}/experiment_tracking "
        '{"enabled": true} (or `llmops integrations set '
        f"{flag.environment} experiment_tracking --enabled`)[/yellow]"
    )


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
