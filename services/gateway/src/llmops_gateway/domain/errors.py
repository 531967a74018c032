"""Domain errors; the API layer maps each to one HTTP status (see ``api/errors.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from llmops_shared.specs import RuleViolation

T = TypeVar("T")


class NotFoundError(Exception):
    """The entity does not exist (404)."""


class ConflictError(Exception):
    """The request contradicts the current state: a duplicate, a terminal job (409)."""


class InvalidRequestError(Exception):
    """The request cannot be answered as asked, whatever the state (422 with the message)."""


class UnavailableError(Exception):
    """A dependency the request needs (Redis) does not answer now (503, with ``Retry-After``
    when ``retry_after`` seconds are given)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MetricsUnavailableError(Exception):
    """MLflow could not give a run's metrics (unreachable, error status, unexpected body)."""


class CatalogRuleError(Exception):
    """A spec breaks a rule that needs catalog facts (422, in FastAPI's error shape)."""

    def __init__(self, violations: Sequence[RuleViolation]) -> None:
        super().__init__("; ".join(v.message for v in violations))
        self.violations = tuple(violations)


def found(entity: T | None, what: str) -> T:
    """``entity``, or :class:`NotFoundError` ``"<what> not found"`` when there is none."""
    if entity is None:
        raise NotFoundError(f"{what} not found")
    return entity
