"""Small helpers for folding worker reports: typed details, observation times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmops_shared.streams import NonRetryableError

FactsT = TypeVar("FactsT", bound=BaseModel)


def brief(exc: ValidationError) -> str:
    """``loc: message`` per error, short enough for a dead-letter reason."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def typed_details(details: Mapping[str, Any], key: str, model: type[FactsT]) -> FactsT | None:
    """``details[key]`` validated as ``model``; None when absent. A malformed value is a
    :class:`NonRetryableError`: the report is dead-lettered with the reason, never retried."""
    value = details.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NonRetryableError(f"details.{key} must be an object, got {type(value).__name__}")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise NonRetryableError(f"details.{key} is malformed: {brief(exc)}") from None


def observed_at(seq: int) -> datetime:
    """``seq`` is the observation time in nanoseconds (see ``llmops_shared.events.new_seq``)."""
    return datetime.fromtimestamp(seq / 1e9, UTC)
