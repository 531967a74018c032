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

import time
import uuid
from typing import Annotated, Any, Final, get_args

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.exc import IntegrityError

from llmops_gateway.domain.experiment_migration import (
    TARGET,
    PlannedRun,
    Queued,
    RunOutcome,
    outcomes,
    plan,
    queue,
)
from llmops_gateway.domain.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.scripts.context import ScriptContext, script_context, table_of
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea

POLL_INTERVAL_S: Final = 0.5
ENVIRONMENTS: Final = get_args(Environment)


def experiments_to_mlflow(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; queue nothing, change nothing.")
    ] = False,
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
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout instead of tables.")
    ] = False,
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
        env = environment or ctx.settings.environment
        if env not in ENVIRONMENTS:
            ctx.err.print(
                escape(f"unknown environment {env!r} (one of {', '.join(ENVIRONMENTS)})"),
                style="red",
            )
            raise typer.Exit(2)
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
        document: dict[str, Any] = {
            "target": TARGET,
            "environment": env,
            "dry_run": dry_run,
            "experiment_tracking": {
                "enabled": flag.enabled,
                "system": flag.system,
                "source": flag.source,
            },
            "planned": [run.as_dict() for run in planned],
        }
        if not planned:
            ctx.err.print(
                escape("nothing to migrate: no built-in experiment runs" + _scope(job_id, env))
            )
            ctx.emit({**document, "results": []})
            return
        _warn_if_disabled(ctx, flag)
        if queued is None:  # dry run
            ctx.emit(document, _plan_table(planned, env))
            movable = sum(run.skipped is None for run in planned)
            ctx.err.print(f"dry run: {movable} run(s) would move to {TARGET}; nothing was queued")
            return
        if not ctx.json_output:
            ctx.out.print(_plan_table(planned, env))
        published = ctx.publish_outbox()
        ctx.err.print(
            f"queued {len(queued.queued)} migration request(s)"
            + (
                f", {len(queued.already_requested)} already requested"
                if queued.already_requested
                else ""
            )
            + f"; published {published} outbox event(s)"
        )
        document["queued"] = [run.job_id for run in queued.queued]
        document["already_requested"] = [run.job_id for run in queued.already_requested]
        if not wait:
            ctx.emit(document)
            ctx.err.print("not waiting: run the command again to see what is left")
            _exit_if_skipped(planned)
            return
        results = _wait(ctx, queued, timeout)
        failed = _report(ctx, document, planned, results)
        if failed:
            raise typer.Exit(1)


def _scope(job_ids: list[str] | None, environment: str) -> str:
    parts = [f"environment {environment}"]
    if job_ids:
        parts.append("job " + ", ".join(job_ids))
    return f" ({'; '.join(parts)})"


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


def _plan_table(planned: list[PlannedRun], environment: str) -> Any:
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


def _exit_if_skipped(planned: list[PlannedRun]) -> None:
    if any(run.skipped for run in planned):
        raise typer.Exit(1)


def _wait(ctx: ScriptContext, queued: Queued, timeout: float) -> list[RunOutcome]:
    """Poll the run records until every request is answered or ``timeout`` passed."""
    waiting = queued.waiting
    deadline = time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ctx.err) as progress:
        task = progress.add_task(f"moving runs to {TARGET}", total=len(waiting))
        while True:
            with ctx.sessions() as session:
                results = outcomes(session, waiting)
            answered = sum(result.outcome != "pending" for result in results)
            progress.update(task, completed=answered)
            if answered == len(waiting) or time.monotonic() >= deadline:
                return results
            time.sleep(POLL_INTERVAL_S)


def _report(
    ctx: ScriptContext,
    document: dict[str, Any],
    planned: list[PlannedRun],
    results: list[RunOutcome],
) -> bool:
    """Emit the results; True when something did not move."""
    rows: list[dict[str, Any]] = []
    for result in results:
        row = result.as_dict()
        if result.outcome == "pending":
            row["outcome"] = "timed_out"
            row["reason"] = "no answer from the tracking worker within --timeout"
        rows.append(row)
    rows += [
        {
            "job_id": run.job_id,
            "outcome": "skipped",
            "status": run.status,
            "reason": run.skipped,
            "backend": "builtin",
            "run_id": run.run_id,
            "experiment_id": None,
            "tracking_url": None,
        }
        for run in planned
        if run.skipped
    ]
    counts = {
        key: sum(row["outcome"] == key for row in rows)
        for key in ("migrated", "failed", "timed_out", "skipped")
    }
    document.update(results=rows, **counts)
    table = table_of(
        f"experiment runs moved to {TARGET}",
        ("job id", "outcome", "status", "run id", "tracking url", "reason"),
        [
            (r["job_id"], r["outcome"], r["status"], r["run_id"], r["tracking_url"], r["reason"])
            for r in rows
        ],
    )
    ctx.emit(document, table)
    not_moved = [row for row in rows if row["outcome"] != "migrated"]
    summary = ", ".join(
        f"{count} {key.replace('_', ' ')}" for key, count in counts.items() if count
    )
    if not_moved:
        ctx.err.print(f"[red]{summary}[/red]")
        for row in not_moved:
            line = f"  {row['job_id']}: {row['outcome']}: {row['reason']}"
            ctx.err.print(escape(line), soft_wrap=True)
    else:
        ctx.err.print(f"[green]{summary}[/green]")
    return bool(not_moved)
