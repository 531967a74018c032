"""Move requests a worker dead-lettered: reported ``dead_lettered`` with the letter to replay,
not waited for.

A request still in the outbox from an earlier ``migrate experiments-to-mlflow`` (so published
then) may have been dead-lettered by ``llmops.training``'s consumers: the command looks it up
among the stream's newest dead letters and reads its answer as ``dead_lettered``
(``llmops dlq replay <id>`` after fixing the cause), unless the record says the run moved or
failed meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Sequence
from typing import Final

from sqlalchemy.orm import Session

from llmops_gateway.moves import experiments
from llmops_gateway.moves.experiments import PlannedRun, RunOutcome
from llmops_gateway.moves.flow import Moves
from llmops_gateway.moves.requests import Queued
from llmops_gateway.scripts.context import ScriptContext
from llmops_shared.events import Stream
from llmops_shared.streams.connection import async_redis
from llmops_shared.streams.dead_letters import list_dead_letters

DEAD_LETTERS_SCANNED: Final = 10_000
"""How many of ``llmops.training``'s newest dead letters are searched for a request."""


def with_dead_letters(
    ctx: ScriptContext, runs: Moves[PlannedRun, RunOutcome], queued: Queued[PlannedRun]
) -> Moves[PlannedRun, RunOutcome]:
    """``runs``, reading a request already in the outbox that was dead-lettered as such."""
    letters = dead_letters(ctx, [run.event_id for run in queued.already_requested])
    return dataclasses.replace(runs, outcomes=outcomes_with(letters)) if letters else runs


def dead_letters(ctx: ScriptContext, event_ids: Collection[str]) -> dict[str, str]:
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


def outcomes_with(
    letters: dict[str, str],
) -> Callable[[Session, Sequence[PlannedRun]], list[RunOutcome]]:
    """The outcome reader, with each dead-lettered request (``letters``: request id -> dead
    letter id) reported ``dead_lettered`` instead of waited for, unless the record says the run
    moved or failed meanwhile (the letter was replayed)."""

    def read(session: Session, runs: Sequence[PlannedRun]) -> list[RunOutcome]:
        results = experiments.outcomes(session, runs)
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
