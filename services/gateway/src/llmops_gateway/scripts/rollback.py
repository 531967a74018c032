"""``rollback integrations``: the integration quickstart's rollback procedure as one command.

(There: set every ``<AREA>_ENABLED`` to false, restart the backend, and optionally clean up the
KServe resources with ``rollback_integrations.py``.)

Turns the integration flags of one environment off (all five areas by default, or the
``--area`` ones), which the workers follow by themselves: each reads ``llmops.config`` and
restarts on its built-in backend, no redeploy and no ``kubectl rollout restart``. With
``--remove-kserve`` it also moves every endpoint of the environment that runs as a KServe
InferenceService back to the built-in Deployment + Service (one ``DeploymentMigrationRequested``
with target ``builtin`` each): the serving worker applies the Deployment and the Service first,
then removes the InferenceService it had created, so the endpoints keep serving.

The plan is always printed first (each flag with its current and new value, and the endpoints
that move; a flag off only by the gateway's own environment is pinned off with a row, since the
workers read their own environment; one already off in ``integration_configs`` is unchanged);
``--dry-run`` stops there, and without ``--yes``
the command asks before changing anything. What it queued is published at once (the gateway's
relay would publish it too). With ``--remove-kserve`` it then follows the moves as ``migrate``
does (a progress bar on stderr, ``--wait/--no-wait``, ``--timeout``) and reports which endpoints
moved. A second rollback finds nothing to change.

The endpoint moves are queued before any flag changes; when another rollback queued the same
moves at the same moment, queueing is retried once, and a second conflict stops the command
before any flag changed (exit 3).

Exit codes: 0 rolled back (every endpoint moved), nothing to do, or dry run; 1 declined, or some
endpoint did not move: skipped, failed, or not answered within ``--timeout`` (the flags are
still turned off); 2 bad options or settings; 3 an operational error (database or Redis
unreachable, no database, the moves could not be queued).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final

import typer
from rich.markup import escape

from llmops_gateway.moves import flow
from llmops_gateway.moves.cli import endpoint_moves, plan_table
from llmops_gateway.moves.requests import QueueConflict
from llmops_gateway.moves.rollback import (
    ALL_AREAS,
    RollbackPlan,
    apply_rollback,
    plan_rollback,
)
from llmops_gateway.moves.serving import BUILTIN
from llmops_gateway.operations.integration_configs import effective_config
from llmops_gateway.scripts.context import (
    JsonOutput,
    ScriptContext,
    ScriptError,
    script_context,
    table_of,
)
from llmops_shared.events import IntegrationArea

AREA_NAMES: Final = tuple(area.value for area in IntegrationArea)
TO_BUILTIN = endpoint_moves(BUILTIN)


def integrations(
    environment: Annotated[
        str, typer.Option(help="dev | stg | prod: the environment to roll back.")
    ],
    area: Annotated[
        list[str] | None,
        typer.Option(
            "--area",
            help=f"Only this area (repeat for several; default all: {', '.join(AREA_NAMES)}).",
        ),
    ] = None,
    remove_kserve: Annotated[
        bool,
        typer.Option(
            "--remove-kserve",
            help="Also move the environment's KServe endpoints to the built-in Deployment + "
            "Service and remove their InferenceServices.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOutput = False,
    wait: flow.Wait = True,
    timeout: flow.Timeout = 300.0,
) -> None:
    """Turn integration flags off for an environment (lists the plan first; --dry-run stops
    there)."""
    with script_context(json_output=json_output) as ctx:
        env = ctx.environment(environment)
        unknown = sorted(set(area or ()) - set(AREA_NAMES))
        if unknown:
            ctx.usage_error(
                f"unknown area(s) {', '.join(unknown)} (one of {', '.join(AREA_NAMES)})"
            )
        areas = [IntegrationArea(a) for a in area] if area else list(ALL_AREAS)
        rollback = plan_rollback(
            ctx.sessions, ctx.settings, env, areas=areas, remove_kserve=remove_kserve
        )
        with ctx.sessions() as session:
            serving = effective_config(
                session, ctx.settings, env, IntegrationArea.SERVING_FRAMEWORK
            )
        serving_stays_on = serving.enabled and IntegrationArea.SERVING_FRAMEWORK not in areas
        if remove_kserve and serving_stays_on:
            ctx.usage_error(
                "--remove-kserve needs the serving_framework flag off: add --area "
                "serving_framework (with the serving framework on, new deployments would be "
                "InferenceServices again)",
            )
        document: dict[str, Any] = {"dry_run": dry_run, **rollback.as_dict()}
        _print_plan(ctx, rollback)
        if rollback.nothing_to_do:
            ctx.err.print(
                escape(f"nothing to roll back in {env}: the flags are off")
                + (" and no endpoint runs on KServe" if remove_kserve else "")
            )
            ctx.emit({**document, "applied": None})
            _exit_if_skipped(rollback)
            return
        if dry_run:
            ctx.emit({**document, "applied": None})
            ctx.err.print("dry run: nothing was changed")
            return
        if not yes and not typer.confirm(
            f"Roll back the integrations of {env}?", default=False, err=True
        ):
            ctx.err.print("declined: nothing was changed")
            ctx.emit({**document, "applied": None, "declined": True})
            raise typer.Exit(1)
        correlation_id = f"rollback-integrations-{uuid.uuid4().hex[:12]}"
        try:
            result = apply_rollback(
                ctx.sessions, ctx.settings, rollback, correlation_id=correlation_id
            )
        except QueueConflict as exc:
            raise ScriptError(
                f"could not queue the endpoint moves: {exc}; nothing was changed (no move "
                "queued, no flag turned off): run the command again"
            ) from exc
        published = ctx.publish_outbox()
        document["applied"] = {**result.as_dict(), "published": published}
        changed = [flag.area.value for flag in result.flags if flag.changed]
        flags_table = table_of(
            f"rolled back ({env})",
            ("area", "enabled", "revision", "changed"),
            [
                (flag.area.value, flag.enabled, flag.revision, "yes" if flag.changed else "no")
                for flag in result.flags
            ],
        )
        following = bool(result.endpoints.waiting)
        if not following:
            ctx.emit(document, flags_table)
        elif not ctx.json_output:
            ctx.out.print(flags_table)
        ctx.err.print(
            escape(
                f"turned off: {', '.join(changed) or 'nothing'}; "
                f"endpoint moves queued: {len(result.endpoints.queued)}"
                + (
                    f" ({len(result.endpoints.already_requested)} already requested)"
                    if result.endpoints.already_requested
                    else ""
                )
                + f"; published {published} outbox event(s). The workers switch to their "
                "built-in backends when they read the change."
            )
        )
        if following:
            # the serving worker moves the endpoints; follow them as `migrate` does
            underway = flow.Underway(ctx, TO_BUILTIN, document, rollback.endpoints)
            underway.settle(result.endpoints, wait=wait, timeout=timeout)
            return
        _exit_if_skipped(rollback)


def _exit_if_skipped(rollback: RollbackPlan) -> None:
    skipped = [e for e in rollback.endpoints if e.skipped]
    if skipped:
        raise typer.Exit(1)


def _print_plan(ctx: ScriptContext, rollback: RollbackPlan) -> None:
    """The plan, always (on stderr with --json, so stdout stays one document)."""
    console = ctx.err if ctx.json_output else ctx.out
    console.print(
        table_of(
            f"integration flags of {rollback.environment}",
            ("area", "service", "now", "after", "action"),
            [
                (
                    flag.area.value,
                    flag.service,
                    f"{'on' if flag.enabled else 'off'} ({flag.source})",
                    "off",
                    flag.action.replace("_", " "),
                )
                for flag in rollback.flags
            ],
        )
    )
    if rollback.remove_kserve:
        if rollback.endpoints:
            console.print(
                plan_table(
                    f"KServe endpoints to move to the built-in Deployment + Service "
                    f"({rollback.environment})",
                    rollback.endpoints,
                )
            )
        else:
            console.print(escape(f"no endpoint of {rollback.environment} runs on KServe"))
    for endpoint in rollback.endpoints:
        if endpoint.skipped:
            ctx.err.print(
                escape(f"{endpoint.endpoint_id} stays on KServe: {endpoint.skipped}"),
                style="yellow",
            )
