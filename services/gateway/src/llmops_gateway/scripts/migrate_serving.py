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

Two runs queueing the same endpoints at the same moment: the one whose insert conflicts runs
its transaction once more (:func:`llmops_gateway.scripts.moves.queue_requests`) and finds them
already requested.

Exit codes: 0 nothing to do, dry run, queued (``--no-wait``), or every endpoint moved; 1 some
endpoint failed, was skipped, was not answered within ``--timeout``, or the flag is off; 2 bad
options or settings; 3 an operational error (database or Redis unreachable, no database).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from llmops_gateway.domain.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.domain.move_requests import Queued
from llmops_gateway.domain.serving_migration import (
    FORMAT_LABELS,
    KSERVE,
    EndpointOutcome,
    Format,
    PlannedEndpoint,
    outcomes,
    plan,
    queue,
)
from llmops_gateway.scripts import moves
from llmops_gateway.scripts.context import JsonOutput, ScriptContext, script_context, table_of
from llmops_shared.events import IntegrationArea


def _skipped_row(endpoint: PlannedEndpoint) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.endpoint_id,
        "name": endpoint.name,
        "outcome": "skipped",
        "status": endpoint.status,
        "reason": endpoint.skipped,
        "backend": endpoint.backend,
        "url": None,
    }


def endpoint_moves(target: Format) -> moves.Moves[PlannedEndpoint, EndpointOutcome]:
    """How endpoint moves to ``target`` are followed and reported (``migrate
    serving-to-kserve``; ``rollback integrations --remove-kserve`` to the built-in objects)."""
    return moves.Moves(
        what="endpoints",
        noun="endpoint",
        target=target,
        destination=FORMAT_LABELS[target],
        worker="serving worker",
        id_field="endpoint_id",
        outcomes=outcomes,
        skipped_row=_skipped_row,
        counted=("migrated", "failed", "gone", "timed_out", "skipped"),
        columns={
            "endpoint id": "endpoint_id",
            "name": "name",
            "outcome": "outcome",
            "status": "status",
            "backend": "backend",
            "reason": "reason",
        },
    )


ENDPOINTS = endpoint_moves(KSERVE)

Planned = tuple[EffectiveConfig, list[PlannedEndpoint], Queued[PlannedEndpoint] | None]


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
    dry_run: moves.DryRun = False,
    json_output: JsonOutput = False,
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
        env = ctx.environment(environment or ctx.settings.environment)
        correlation_id = f"migrate-serving-to-{KSERVE}-{uuid.uuid4().hex[:12]}"

        def plan_and_queue(session: Session) -> Planned:
            flag = effective_config(session, ctx.settings, env, IntegrationArea.SERVING_FRAMEWORK)
            planned = plan(session, target=KSERVE, environment=env, endpoint_ids=endpoint_id or ())
            queued: Queued[PlannedEndpoint] | None = None
            if planned and flag.enabled and not dry_run:
                queued = queue(session, planned, correlation_id=correlation_id)
            return flag, planned, queued

        flag, planned, queued = moves.queue_requests(ctx, plan_and_queue)
        document = ENDPOINTS.plan_document(env, dry_run, flag, planned)
        table = _plan_table(planned, env)
        if moves.done_before_queueing(
            ctx,
            ENDPOINTS,
            document,
            planned,
            queued,
            dry_run=dry_run,
            scope=moves.scope(env, "endpoint", endpoint_id),
            table=table,
            flag=flag,
            flag_off=_flag_off,
        ):
            return
        assert queued is not None
        moves.carry_out(
            ctx, ENDPOINTS, document, planned, queued, table, wait=wait, timeout=timeout
        )


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


def plan_table(title: str, planned: list[PlannedEndpoint]) -> Table:
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


def _plan_table(planned: list[PlannedEndpoint], environment: str) -> Table:
    return plan_table(f"built-in endpoints to move to KServe ({environment})", planned)
