"""``migrate serving-to-kserve``: move endpoints on the built-in Deployment + Service to KServe.

The gateway plans (:mod:`llmops_gateway.domain.serving_migration`): every endpoint of the
environment whose last report shows the built-in objects. It queues one
``DeploymentMigrationRequested`` (target ``kserve``) per endpoint in its outbox and publishes
it; the serving worker, running on KServe, applies the InferenceService under the endpoint's
name, then removes the Deployment and Service it had created, and reports the endpoint with
its new manifest; the gateway's status consumer folds that report into the endpoint. With
``--wait`` the command polls the endpoints until each one reports an InferenceService (or
``Failed``). Running it again finds nothing built-in and changes nothing; running it while the
first requests are still in flight asks for nothing new (same event ids).

The serving framework must be on in the environment (the worker refuses to render KServe
otherwise): the command checks the effective ``serving_framework`` flag and queues nothing
while it is off.

Exit codes: 0 nothing to do, dry run, queued (``--no-wait``), or every endpoint moved; 1 some
endpoint failed, was skipped, was not answered within ``--timeout``, or the flag is off; 2 bad
options.
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

from llmops_gateway.domain.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.domain.serving_migration import (
    FORMAT_LABELS,
    KSERVE,
    EndpointOutcome,
    Format,
    PlannedEndpoint,
    Queued,
    outcomes,
    plan,
    queue,
)
from llmops_gateway.scripts.context import ScriptContext, script_context, table_of
from llmops_shared.config import Environment
from llmops_shared.events import IntegrationArea

POLL_INTERVAL_S: Final = 0.5
ENVIRONMENTS: Final = get_args(Environment)


def serving_to_kserve(
    environment: Annotated[
        str | None,
        typer.Option(
            help="dev | stg | prod: whose endpoints move (and whose serving_framework flag is "
            "checked). Default: the gateway's ENVIRONMENT."
        ),
    ] = None,
    endpoint_id: Annotated[
        list[str] | None,
        typer.Option("--endpoint-id", help="Only this endpoint (repeat for several)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; queue nothing, change nothing.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout instead of tables.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Wait until every endpoint reports an InferenceService (or Failed).",
        ),
    ] = True,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the moves (with --wait).")
    ] = 300.0,
) -> None:
    """Move built-in serving endpoints to KServe InferenceServices (idempotent; --dry-run
    shows the plan)."""
    with script_context(json_output=json_output) as ctx:
        env = environment or ctx.settings.environment
        if env not in ENVIRONMENTS:
            ctx.err.print(
                escape(f"unknown environment {env!r} (one of {', '.join(ENVIRONMENTS)})"),
                style="red",
            )
            raise typer.Exit(2)
        correlation_id = f"migrate-serving-to-{KSERVE}-{uuid.uuid4().hex[:12]}"
        with ctx.sessions.begin() as session:
            flag = effective_config(session, ctx.settings, env, IntegrationArea.SERVING_FRAMEWORK)
            planned = plan(session, target=KSERVE, environment=env, endpoint_ids=endpoint_id or ())
            queued = None
            if planned and flag.enabled and not dry_run:
                queued = queue(session, planned, correlation_id=correlation_id)
        document: dict[str, Any] = {
            "target": KSERVE,
            "environment": env,
            "dry_run": dry_run,
            "serving_framework": {
                "enabled": flag.enabled,
                "system": flag.system,
                "source": flag.source,
            },
            "planned": [endpoint.as_dict() for endpoint in planned],
        }
        if not planned:
            ctx.err.print(
                escape("nothing to migrate: no built-in endpoints" + _scope(env, endpoint_id))
            )
            ctx.emit({**document, "results": []})
            return
        if queued is None and not dry_run:  # the flag is off: nothing was queued
            ctx.emit(document, _plan_table(planned, env))
            _flag_off(ctx, flag)
            raise typer.Exit(1)
        if queued is None:  # dry run
            ctx.emit(document, _plan_table(planned, env))
            if not flag.enabled:
                _flag_off(ctx, flag)
            movable = sum(endpoint.skipped is None for endpoint in planned)
            ctx.err.print(
                f"dry run: {movable} endpoint(s) would move to {FORMAT_LABELS[KSERVE]}; "
                "nothing was queued"
            )
            return
        if not ctx.json_output:
            ctx.out.print(_plan_table(planned, env))
        published = ctx.publish_outbox()
        ctx.err.print(_queued_note(queued, published))
        document["queued"] = [e.endpoint_id for e in queued.queued]
        document["already_requested"] = [e.endpoint_id for e in queued.already_requested]
        if not wait:
            ctx.emit(document)
            ctx.err.print("not waiting: run the command again to see what is left")
            if any(endpoint.skipped for endpoint in planned):
                raise typer.Exit(1)
            return
        results = wait_for_moves(ctx, queued, timeout, target=KSERVE)
        if report(ctx, document, planned, results, target=KSERVE):
            raise typer.Exit(1)


def _scope(environment: str, endpoint_ids: list[str] | None) -> str:
    parts = [f"environment {environment}"]
    if endpoint_ids:
        parts.append("endpoint " + ", ".join(endpoint_ids))
    return f" ({'; '.join(parts)})"


def _flag_off(ctx: ScriptContext, flag: EffectiveConfig) -> None:
    ctx.err.print(
        escape(
            f"serving_framework is disabled in {flag.environment} ({flag.source}): the serving "
            "worker renders the built-in Deployment + Service and refuses to move endpoints to "
            "KServe. Turn it on first: PUT /llm-ops/v1/integrations/configs/"
            f'{flag.environment}/serving_framework {{"enabled": true}}'
        ),
        style="yellow",
    )


def _queued_note(queued: Queued, published: int) -> str:
    return (
        f"queued {len(queued.queued)} migration request(s)"
        + (
            f", {len(queued.already_requested)} already requested"
            if queued.already_requested
            else ""
        )
        + f"; published {published} outbox event(s)"
    )


def plan_table(title: str, planned: list[PlannedEndpoint]) -> Any:
    """The endpoints a migration moves (or skips, and why)."""
    return table_of(
        title,
        ("endpoint id", "name", "route", "status", "now", "action"),
        [
            (
                e.endpoint_id,
                e.name,
                e.route,
                e.status,
                e.current or "unknown",
                f"skip: {e.skipped}" if e.skipped else f"move to {e.target}",
            )
            for e in planned
        ],
    )


def _plan_table(planned: list[PlannedEndpoint], environment: str) -> Any:
    return plan_table(f"built-in endpoints to move to KServe ({environment})", planned)


def wait_for_moves(
    ctx: ScriptContext, queued: Queued, timeout: float, *, target: Format
) -> list[EndpointOutcome]:
    """Poll the endpoints until every requested move is answered or ``timeout`` passed; a
    progress bar on stderr."""
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
        task = progress.add_task(f"moving endpoints to {target}", total=len(waiting))
        while True:
            with ctx.sessions() as session:
                results = outcomes(session, waiting)
            answered = sum(result.outcome != "pending" for result in results)
            progress.update(task, completed=answered)
            if answered == len(waiting) or time.monotonic() >= deadline:
                return results
            time.sleep(POLL_INTERVAL_S)


def report(
    ctx: ScriptContext,
    document: dict[str, Any],
    planned: list[PlannedEndpoint],
    results: list[EndpointOutcome],
    *,
    target: Format,
) -> bool:
    """Emit the results; True when some endpoint did not move."""
    rows: list[dict[str, Any]] = []
    for result in results:
        row = result.as_dict()
        if result.outcome == "pending":
            row["outcome"] = "timed_out"
            row["reason"] = "no answer from the serving worker within --timeout"
        rows.append(row)
    rows += [
        {
            "endpoint_id": e.endpoint_id,
            "name": e.name,
            "outcome": "skipped",
            "status": e.status,
            "reason": e.skipped,
            "backend": e.backend,
            "url": None,
        }
        for e in planned
        if e.skipped
    ]
    counts = {
        key: sum(row["outcome"] == key for row in rows)
        for key in ("migrated", "failed", "gone", "timed_out", "skipped")
    }
    document.update(results=rows, **counts)
    table = table_of(
        f"endpoints moved to {FORMAT_LABELS[target]}",
        ("endpoint id", "name", "outcome", "status", "backend", "reason"),
        [
            (r["endpoint_id"], r["name"], r["outcome"], r["status"], r["backend"], r["reason"])
            for r in rows
        ],
    )
    ctx.emit(document, table)
    not_moved = [row for row in rows if row["outcome"] != "migrated"]
    summary = ", ".join(
        f"{count} {key.replace('_', ' ')}" for key, count in counts.items() if count
    )
    if not_moved:
        ctx.err.print(f"[red]{escape(summary)}[/red]")
        for row in not_moved:
            ctx.err.print(escape(f"  {row['endpoint_id']}: {row['outcome']}: {row['reason']}"))
    else:
        ctx.err.print(f"[green]{escape(summary)}[/green]")
    return bool(not_moved)
