"""Small helpers for folding worker reports: validation error briefs, observation times."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError


def brief(exc: ValidationError) -> str:
    """``loc: message`` per error, short enough for a dead-letter reason."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def observed_at(seq: int) -> datetime:
    """``seq`` is the observation time in nanoseconds (see ``llmops_shared.events.new_seq``)."""
    return datetime.fromtimestamp(seq / 1e9, UTC)
