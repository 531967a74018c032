"""What the move commands share once they have a plan: the JSON document, publishing what was
queued, following the workers' answers with a progress bar, and the result report.

``migrate experiments-to-mlflow``, ``migrate serving-to-kserve`` and ``rollback integrations
--remove-kserve`` differ in what they move (runs, endpoints), which worker answers and how a
result row reads: a :class:`Moves` holds those differences, :class:`Underway` the flow they
all follow (:mod:`llmops_gateway.moves.command` the steps before it), so the commands word,
count and exit alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Generic, Protocol, TypeVar

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
from rich.table import Table
from sqlalchemy.orm import Session

from llmops_gateway.moves.requests import Queued
from llmops_gateway.operations.integration_configs import EffectiveConfig
from llmops_gateway.scripts.context import ScriptContext, table_of

POLL_INTERVAL_S: Final = 0.5

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show the plan; queue nothing, change nothing.")
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the moves until the worker answered for each (a progress bar on stderr).",
    ),
]
Timeout = Annotated[
    float,
    typer.Option(min=0, metavar="S", help="Seconds to wait for the answers (with --wait)."),
]


class Planned(Protocol):
    """A planned move: its request's envelope id, and why it cannot move (if it cannot)."""

    @property
    def event_id(self) -> str: ...

    @property
    def skipped(self) -> str | None: ...

    def as_dict(self) -> dict[str, Any]: ...


class Answer(Protocol):
    """Where one requested move stands (``pending`` until the worker answered)."""

    @property
    def outcome(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=Planned)
A = TypeVar("A", bound=Answer)


@dataclass(frozen=True)
class Moves(Generic[P, A]):
    """How one move command names, follows and reports its moves."""

    what: str
    """What moves, in titles and notes: ``experiment runs``, ``endpoints``."""
    noun: str
    """One of them, in counts and the progress bar: ``run``, ``endpoint``."""
    target: str
    """The target's short name (the document's ``target``, the progress bar): ``mlflow``..."""
    destination: str
    """The target as the dry-run note says it: ``mlflow``, ``KServe InferenceService``."""
    worker: str
    """Who answers the requests: ``tracking worker``, ``serving worker``."""
    id_field: str
    """The field naming a move, in the planned moves and in the result rows: ``job_id``..."""
    outcomes: Callable[[Session, Sequence[P]], list[A]]
    """Reads where each requested move stands."""
    skipped_row: Callable[[P], dict[str, Any]]
    """The result row of a move that was not requested (shaped like an answer's)."""
    counted: tuple[str, ...]
    """The outcomes the document counts (``migrated``, ``failed``, ``timed_out``...)."""
    columns: Mapping[str, str]
    """The results table: column header -> result row key."""

    def id_of(self, move: P) -> str:
        name: str = getattr(move, self.id_field)
        return name

    def plan_document(
        self, environment: str, dry_run: bool, flag: EffectiveConfig, planned: Sequence[P]
    ) -> dict[str, Any]:
        """The start of the command's JSON document: the target, the area's flag, the plan."""
        return {
            "target": self.target,
            "environment": environment,
            "dry_run": dry_run,
            flag.area.value: {
                "enabled": flag.enabled,
                "system": flag.system,
                "source": flag.source,
            },
            "planned": [move.as_dict() for move in planned],
        }

    def nothing_to_move(self, ctx: ScriptContext, document: dict[str, Any], scope: str) -> None:
        """Nothing is planned (``scope`` says where the command looked): say so, and an empty
        result."""
        ctx.err.print(escape(f"nothing to migrate: no built-in {self.what}{scope}"))
        ctx.emit({**document, "results": []})

    def dry_run_note(self, planned: Sequence[P]) -> str:
        movable = sum(move.skipped is None for move in planned)
        return (
            f"dry run: {movable} {self.noun}(s) would move to {self.destination}; "
            "nothing was queued"
        )


@dataclass(frozen=True)
class Underway(Generic[P, A]):
    """One move command once it has a plan: where it writes (``ctx``), how its moves are
    followed and reported (``moves``), its JSON document so far and the planned moves."""

    ctx: ScriptContext
    moves: Moves[P, A]
    document: dict[str, Any]
    planned: Sequence[P]

    def carry_out(
        self, queued: Queued[P], plan_table: Table, *, wait: bool, timeout: float
    ) -> None:
        """Publish what was queued, then (``--wait``) follow the answers and report them.
        Exits 1 when some move was skipped, failed or was not answered within ``timeout``."""
        ctx = self.ctx
        if not ctx.json_output:
            ctx.out.print(plan_table)
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
        self.document["queued"] = [self.moves.id_of(move) for move in queued.queued]
        self.document["already_requested"] = [
            self.moves.id_of(move) for move in queued.already_requested
        ]
        self.settle(queued, wait=wait, timeout=timeout)

    def settle(self, queued: Queued[P], *, wait: bool, timeout: float) -> None:
        """Once the requests are published: with ``wait``, follow them and report the results
        (the document's ``results`` and counts, a table); without, emit the document as it is.
        Exits 1 when some move was skipped, failed or was not answered within ``timeout``."""
        if not wait:
            self.ctx.emit(self.document)
            self.ctx.err.print("not waiting: run the command again to see what is left")
            if any(move.skipped for move in self.planned):
                raise typer.Exit(1)
            return
        moves = self.moves
        description = f"moving {moves.noun}s to {moves.target}"
        results = follow(self.ctx, description, queued.waiting, moves.outcomes, timeout)
        if self.report(results):
            raise typer.Exit(1)

    def report(self, results: Sequence[A]) -> bool:
        """Emit the results (the answers, a move still pending as ``timed_out``, then the
        skipped ones) with their counts; True when something did not move."""
        ctx, moves = self.ctx, self.moves
        rows: list[dict[str, Any]] = []
        for result in results:
            row = result.as_dict()
            if result.outcome == "pending":
                row["outcome"] = "timed_out"
                row["reason"] = f"no answer from the {moves.worker} within --timeout"
            rows.append(row)
        rows += [moves.skipped_row(move) for move in self.planned if move.skipped]
        counts = {key: sum(row["outcome"] == key for row in rows) for key in moves.counted}
        self.document.update(results=rows, **counts)
        table = table_of(
            f"{moves.what} moved to {moves.destination}",
            list(moves.columns),
            [[row[key] for key in moves.columns.values()] for row in rows],
        )
        ctx.emit(self.document, table)
        not_moved = [row for row in rows if row["outcome"] != "migrated"]
        summary = ", ".join(
            f"{count} {key.replace('_', ' ')}" for key, count in counts.items() if count
        )
        if not_moved:
            ctx.err.print(f"[red]{escape(summary)}[/red]")
            for row in not_moved:
                line = f"  {row[moves.id_field]}: {row['outcome']}: {row['reason']}"
                ctx.err.print(escape(line), soft_wrap=True)
        else:
            ctx.err.print(f"[green]{escape(summary)}[/green]")
        return bool(not_moved)


def follow(
    ctx: ScriptContext,
    description: str,
    waiting: Sequence[P],
    outcomes: Callable[[Session, Sequence[P]], list[A]],
    timeout: float,
) -> list[A]:
    """Poll ``outcomes`` until every move in ``waiting`` is answered or ``timeout`` passed; a
    progress bar on stderr."""
    deadline = time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=ctx.err) as progress:
        task = progress.add_task(description, total=len(waiting))
        while True:
            with ctx.sessions() as session:
                results = outcomes(session, waiting)
            answered = sum(result.outcome != "pending" for result in results)
            progress.update(task, completed=answered)
            if answered == len(waiting) or time.monotonic() >= deadline:
                return results
            time.sleep(POLL_INTERVAL_S)
