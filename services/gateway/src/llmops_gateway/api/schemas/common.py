"""What every schema module shares: the API prefix, the camelCase base models, the list shapes
and the documented error answers of the routes (their bodies: :class:`ErrorMessage`,
:class:`ValidationFailed`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Generic, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

API_PREFIX = "/llm-ops/v1"

T = TypeVar("T")

Responses = dict[int | str, dict[str, Any]]
"""A route's ``responses=`` (the answers besides its own, for the OpenAPI document)."""


def _not_a_number(value: object) -> object:
    """Pydantic would read a number (or a numeric string, as every query value is) as Unix
    seconds; the document says RFC 3339 text."""
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        raise ValueError("must be an RFC 3339 date-time with a time zone, not a number")
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


DateTimeText = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
"""A date-time a client sends: RFC 3339 text with a time zone (``2026-01-01T00:00:00Z``)."""


class CamelModel(BaseModel):
    """camelCase aliases; snake_case names are accepted on input too; unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="forbid"
    )

    @classmethod
    def from_row(cls, row: object, **values: Any) -> Self:
        """The body of ``row`` (a stored record): each field is the row's attribute of the same
        name, except those in ``values`` (computed, or named otherwise on the row)."""
        read = {name: getattr(row, name) for name in cls.model_fields if name not in values}
        return cls(**read, **values)


class CamelOut(BaseModel):
    """camelCase on the wire, for the reports built from other objects' attributes (the
    operations answers); unlike :class:`CamelModel`, extra attributes are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, from_attributes=True)


class Items(CamelModel, Generic[T]):
    """A whole list: ``{items}``."""

    items: list[T]


@dataclass(frozen=True)
class Paging:
    """The page a list request asks for (``?limit=&offset=``, see ``api.deps.Pagination``)."""

    limit: int
    offset: int


class Page(Items[T], Generic[T]):
    """One page of a list, newest first: ``{items, limit, offset}``."""

    limit: int
    offset: int

    @classmethod
    def of(cls, items: list[T], paging: Paging) -> Self:
        """The page ``paging`` asked for, holding ``items``: it echoes the request's paging."""
        return cls(items=items, limit=paging.limit, offset=paging.offset)


class ErrorMessage(BaseModel):
    """An error answer: ``{"detail": "<what went wrong, in one sentence>"}`` (400, 401, 403, 404,
    409, 503)."""

    detail: str


class FieldError(BaseModel):
    """One broken rule of a 422: where (``loc``, e.g. ``["body", "trainJobSpec", "lora",
    "r"]``), what (``msg``), the rule's ``type`` (a pydantic error type, ``spec_rule`` for
    a spec or catalog rule, ``json_invalid``...) and, when shown, the value refused (``input``)
    and the rule's parameters (``ctx``)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationFailed(BaseModel):
    """A 422: the request broke a rule and changed nothing. ``detail`` is the list of broken
    rules (FastAPI's shape: the schema, the specs' and the catalog's rules), or one sentence
    for a rule checked further in (an integration system the area does not support, a value
    the database cannot store)."""

    detail: list[FieldError] | str


UNREADABLE_BODY: Final[dict[str, Any]] = {
    "model": ErrorMessage,
    "description": "The body cannot be read as JSON (not UTF-8): "
    "'There was an error parsing the body'",
}
NO_SUCH_PATH: Final[dict[str, Any]] = {
    "model": ErrorMessage,
    "description": "Not Found: a path parameter holding a '/' makes a path no operation has",
}
INVALID_REQUEST: Final[dict[str, Any]] = {
    "model": ValidationFailed,
    "description": "A rule is broken (each one named); nothing was changed",
}
UNAVAILABLE: Final[dict[str, Any]] = {
    "model": ErrorMessage,
    "description": "The database, Redis or the OIDC issuer does not answer: retry after "
    "Retry-After",
}


def error_responses(
    not_found: str | None = None, conflict: str | None = None, *, auth: bool = True
) -> Responses:
    """The 401 (``auth``), 404 and 409 answers a route documents, with their descriptions."""
    responses: Responses = {}
    if auth:
        responses[401] = {"model": ErrorMessage, "description": "Missing or invalid API key"}
    if not_found is not None:
        responses[404] = {"model": ErrorMessage, "description": not_found}
    if conflict is not None:
        responses[409] = {"model": ErrorMessage, "description": conflict}
    return responses
