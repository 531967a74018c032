"""Small helpers for folding worker reports: validation error briefs, observation times, the
facts a report gives."""

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


def replace_given(row: object, details: object, *names: str, **renamed: str) -> None:
    """Each fact ``details`` gives replaces the stored one on ``row``; a missing or null one keeps
    it (a short report, e.g. a cancel's, must not blank what an earlier report said).

    ``names`` are facts stored under their own name; ``renamed`` maps a row's attribute to the
    fact it stores (``tracking_url="run_url"``).
    """
    for attribute, fact in [*((name, name) for name in names), *renamed.items()]:
        if not hasattr(type(row), attribute):  # a typo must not add a stray attribute
            raise AttributeError(f"{type(row).__name__} stores no {attribute!r}")
        value = getattr(details, fact)
        if value is not None:
            setattr(row, attribute, value)
