"""RuleViolation, and its conversion to and from pydantic validation errors.

Rules are pure functions returning violations, so the same code serves three callers: the
models' validators (which turn violations into pydantic errors, hence FastAPI 422 bodies), the
gateway's catalog checks, and scripts that re-check stored specs against the current rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, get_args

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

SPEC_RULE_ERROR_TYPE: Final = "spec_rule"
"""The pydantic error ``type`` of every rule violation (field constraints keep pydantic's own)."""

Loc = tuple[str | int, ...]

_KNOWN_ERROR_TYPES: Final = frozenset(get_args(ErrorType))


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """One broken rule: where (``loc``, as in pydantic errors) and the human message.

    ``rule`` names the rule for machines (dashboards, tests); ``error_type`` is
    ``"spec_rule"`` for our rules and pydantic's type (e.g. ``greater_than``) for violations
    converted from field constraints; ``input`` is the offending value when known.
    """

    loc: Loc
    message: str
    rule: str = "spec_rule"
    error_type: str = SPEC_RULE_ERROR_TYPE
    input: Any = field(default=None, compare=False)

    def with_prefix(self, prefix: Loc) -> RuleViolation:
        """The same violation located under ``prefix`` (e.g. ``("body", "trainJobSpec")``)."""
        return RuleViolation(
            (*prefix, *self.loc), self.message, self.rule, self.error_type, self.input
        )


def violation_error_details(violations: Iterable[RuleViolation]) -> list[InitErrorDetails]:
    """Pydantic line errors for ``violations``: type ``spec_rule``, the message verbatim as
    ``msg``, and ``ctx={"rule": ...}``.

    The message is passed as a ``PydanticCustomError`` template, which substitutes only
    ``{key}`` placeholders naming ctx keys; the only key is ``rule``, which no message contains,
    so messages come out verbatim.
    """
    return [
        {
            "type": PydanticCustomError(v.error_type, v.message, {"rule": v.rule}),
            "loc": v.loc,
            "input": v.input,
        }
        for v in violations
    ]


def violations_to_validation_error(
    title: str, violations: Iterable[RuleViolation], loc_prefix: Loc = ()
) -> ValidationError:
    """A ``ValidationError`` carrying ``violations`` (under ``loc_prefix``), e.g. for the
    gateway to turn catalog violations into the same 422 body shape FastAPI produces."""
    located = [v.with_prefix(loc_prefix) for v in violations]
    return ValidationError.from_exception_data(title, violation_error_details(located))


def violations_from_validation_error(exc: ValidationError) -> list[RuleViolation]:
    """Every error in ``exc`` as a RuleViolation (rule violations and field constraints alike),
    for callers that want one flat list, such as a stored-record validation script."""
    violations = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        rule = ctx.get("rule", error["type"])
        violations.append(
            RuleViolation(
                tuple(error["loc"]), error["msg"], str(rule), error["type"], error.get("input")
            )
        )
    return violations


def merge_into_validation_error(
    title: str, exc: ValidationError | None, violations: Sequence[RuleViolation]
) -> ValidationError:
    """One ValidationError holding the errors of ``exc`` (field parsing) plus ``violations``
    (rules), so a client sees every problem in one response.

    Violations that touch a location pydantic already complained about are dropped: when a
    value failed to parse, a rule about that same value would only repeat the complaint.
    """
    details: list[InitErrorDetails] = []
    failed: list[Loc] = []
    if exc is not None:
        for error in exc.errors(include_url=False):
            failed.append(tuple(error["loc"]))
            details.append(_reraisable(error))
    kept = [v for v in violations if not any(_overlaps(v.loc, loc) for loc in failed)]
    details.extend(violation_error_details(kept))
    return ValidationError.from_exception_data(title, details)


def _reraisable(error: Any) -> InitErrorDetails:
    """Turn an ``errors()`` entry back into line-error input: known pydantic types are passed
    by name (pydantic rebuilds their message from ``ctx``), custom ones (ours, or a
    ``PydanticCustomError`` from a nested validator) keep their type and message verbatim."""
    detail: InitErrorDetails
    ctx = error.get("ctx")
    if error["type"] in _KNOWN_ERROR_TYPES:
        detail = {"type": error["type"], "loc": error["loc"], "input": error.get("input")}
        if ctx is not None:
            detail["ctx"] = ctx
        return detail
    return {
        "type": PydanticCustomError(error["type"], error["msg"], ctx),
        "loc": error["loc"],
        "input": error.get("input"),
    }


def _overlaps(a: Loc, b: Loc) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]
