"""Domain errors; the API layer maps each to one HTTP status (see ``api/errors.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from llmops_shared.specs import RuleViolation


class NotFoundError(Exception):
    """The entity does not exist (404)."""


class ConflictError(Exception):
    """The request contradicts the current state: a duplicate, a terminal job (409)."""


class InvalidRequestError(Exception):
    """The request cannot be answered as asked, whatever the state (422 with the message)."""


class CatalogRuleError(Exception):
    """A spec breaks a rule that needs catalog facts (422, in FastAPI's error shape)."""

    def __init__(self, violations: Sequence[RuleViolation]) -> None:
        super().__init__("; ".join(v.message for v in violations))
        self.violations = tuple(violations)
