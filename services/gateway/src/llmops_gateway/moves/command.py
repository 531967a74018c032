"""One move command from the options to the queued requests, the same for every ``migrate``
command: plan and queue in one transaction, then stop (nothing planned, a dry run, the area's
flag off) or hand over to :meth:`llmops_gateway.moves.flow.Underway.carry_out`.

A :class:`Command` holds what differs: what is planned and queued, which flag must be on, the
plan table and what the worker does while that flag is off; :func:`run` the steps they share.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from llmops_gateway.moves.flow import A, Moves, P, Underway
from llmops_gateway.moves.requests import QueueConflict, Queued, queue_with_retry
from llmops_gateway.operations.integration_configs import EffectiveConfig, effective_config
from llmops_gateway.scripts.context import ScriptContext, ScriptError, script_context
from llmops_shared.events import IntegrationArea

T = TypeVar("T")


@dataclass(frozen=True)
class Command(Generic[P, A]):
    """What one ``migrate`` command moves and how it plans and queues it."""

    moves: Moves[P, A]
    source: str
    """What moves, in the requests' correlation id (``migrate-<source>-to-<target>-...``)."""
    area: IntegrationArea
    """The area whose flag must be on: its worker refuses every move while it is off."""
    id_noun: str
    """How the ids the command was limited to are named in its notes: ``job``, ``endpoint``."""
    plan: Callable[[Session, str, Sequence[str]], list[P]]
    """The moves of an environment (only those of the given ids, when some are given)."""
    queue: Callable[[Session, list[P], str], Queued[P]]
    """Queues the movable ones' requests (with this correlation id) in the open transaction."""
    plan_table: Callable[[list[P], str], Table]
    """The plan of an environment, as a table."""
    refusal: str
    """What the worker does while the area is off (it refuses the moves), in the warning."""
    answers: Callable[[ScriptContext, Moves[P, A], Queued[P]], Moves[P, A]] | None = None
    """How the answers are read once the requests are queued, when it depends on them."""


def run(
    command: Command[P, A],
    *,
    environment: str | None,
    ids: Sequence[str] | None,
    json_output: bool,
    dry_run: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Plan ``command``'s moves in ``environment`` (default: the gateway's) and queue their
    requests, in one transaction that reads the area's flag too; then stop there (nothing
    planned, a dry run, the flag off: :func:`done_before_queueing`) or publish the requests and
    follow them (:meth:`~llmops_gateway.moves.flow.Underway.carry_out`)."""
    with script_context(json_output=json_output) as ctx:
        env = ctx.environment(environment or ctx.settings.environment)
        moves = command.moves
        correlation_id = f"migrate-{command.source}-to-{moves.target}-{uuid.uuid4().hex[:12]}"

        def plan_and_queue(
            session: Session,
        ) -> tuple[EffectiveConfig, list[P], Queued[P] | None]:
            flag = effective_config(session, ctx.settings, env, command.area)
            planned = command.plan(session, env, ids or ())
            queued: Queued[P] | None = None
            if planned and flag.enabled and not dry_run:
                queued = command.queue(session, planned, correlation_id)
            return flag, planned, queued

        flag, planned, queued = queue_requests(ctx, plan_and_queue)
        document = moves.plan_document(env, dry_run, flag, planned)
        table = command.plan_table(planned, env)
        if done_before_queueing(
            ctx,
            moves,
            document,
            planned,
            queued,
            dry_run=dry_run,
            scope=scope(env, command.id_noun, ids),
            table=table,
            flag=flag,
            refusal=command.refusal,
        ):
            return
        assert queued is not None
        if command.answers is not None:
            moves = command.answers(ctx, moves, queued)
        Underway(ctx, moves, document, planned).carry_out(queued, table, wait=wait, timeout=timeout)


def scope(environment: str, noun: str, ids: Sequence[str] | None) -> str:
    """`` (environment dev; job a, b)``: what the command was asked to look at."""
    parts = [f"environment {environment}"]
    if ids:
        parts.append(f"{noun} " + ", ".join(ids))
    return f" ({'; '.join(parts)})"


def done_before_queueing(
    ctx: ScriptContext,
    moves: Moves[P, A],
    document: dict[str, Any],
    planned: Sequence[P],
    queued: Queued[P] | None,
    *,
    dry_run: bool,
    scope: str,
    table: Table,
    flag: EffectiveConfig,
    refusal: str,
) -> bool:
    """What every ``migrate`` command does when nothing was queued: nothing planned, a dry
    run (the plan, and a warning when the area is off), or the area off (the plan, how to turn
    it on, exit 1). True when the command is done."""
    if not planned:
        moves.nothing_to_move(ctx, document, scope)
        return True
    if queued is not None:
        return False
    ctx.emit(document, table)
    if not dry_run:  # the flag is off: the worker would refuse every move
        flag_off(ctx, flag, refusal)
        raise typer.Exit(1)
    if not flag.enabled:
        flag_off(ctx, flag, refusal)
    ctx.err.print(moves.dry_run_note(planned))
    return True


def flag_off(ctx: ScriptContext, flag: EffectiveConfig, refusal: str) -> None:
    """Warn that ``flag``'s area is off, what its worker does meanwhile (``refusal``), and how
    to turn it on."""
    area = flag.area.value
    ctx.err.print(
        escape(
            f"{area} is disabled in {flag.environment} ({flag.source}): {refusal}. Turn it on "
            f"first: PUT /llm-ops/v1/integrations/configs/{flag.environment}/{area} "
            '{"enabled": true}'
        ),
        style="yellow",
    )


def queue_requests(ctx: ScriptContext, step: Callable[[Session], T]) -> T:
    """``step`` (plan and queue) in one transaction, retried once when another run queued the
    same requests at the same moment; a second conflict is an operational error (exit 3), with
    nothing queued."""
    try:
        return queue_with_retry(ctx.sessions, step)
    except QueueConflict as exc:
        raise ScriptError(
            f"{exc}: nothing was queued; run the command again (it asks only for what is left)"
        ) from exc
