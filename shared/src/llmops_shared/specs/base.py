"""The base of every spec model and the validator plumbing that runs the rules.

Why a wrap validator: an ``after`` model validator never runs when any field fails to parse, so a
client would see its type errors first and the rule violations only on the next attempt. Wrapping
the core validation lets us run the (tolerant) rules on the raw input too and report everything
in one ValidationError, with each violation at its own ``loc``. Raising a ``ValidationError``
inside a validator makes pydantic re-emit its line errors, so the locations nest correctly when
the spec is a field of another model (a FastAPI body, an event payload).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler

from llmops_shared.specs.violations import RuleViolation, merge_into_validation_error

M = TypeVar("M", bound=BaseModel)


class SpecModel(BaseModel):
    """Base of all spec models: unknown fields are errors (the specs are a public API, and a
    misspelt optional field must not be silently dropped), and specs are immutable values."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_with_rules(
    cls: type[M],
    data: Any,
    handler: ValidatorFunctionWrapHandler,
    rules: Callable[[Mapping[str, Any]], list[RuleViolation]],
) -> M:
    """Run pydantic's validation of ``cls`` and ``rules``; raise every problem together.

    An existing instance of ``cls`` is passed through: it was checked when it was built.
    """
    if isinstance(data, cls):
        return data
    try:
        model = handler(data)
    except ValidationError as exc:
        violations = rules(data) if isinstance(data, Mapping) else []
        if not violations:
            raise
        raise merge_into_validation_error(cls.__name__, exc, violations) from None
    if not isinstance(model, cls):  # pragma: no cover - pydantic always returns cls here
        raise TypeError(f"expected {cls.__name__}, got {type(model).__name__}")
    # The input passed pydantic's checks, so the rules can read it as is; dumping the model
    # again is only needed when the input was not a mapping (e.g. JSON text).
    # (``dict`` is checked first: it is what JSON gives, and ABC checks cost on the hot path.)
    violations = rules(data if isinstance(data, dict | Mapping) else model.model_dump())
    if violations:
        raise merge_into_validation_error(cls.__name__, None, violations)
    return model
