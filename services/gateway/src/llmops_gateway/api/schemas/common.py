"""What every schema module shares: the API prefix, the camelCase base models, the list shapes
and the documented error answers of the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

API_PREFIX = "/llm-ops/v1"

T = TypeVar("T")

Responses = dict[int | str, dict[str, Any]]
"""A route's ``responses=`` (the answers besides its own, for the OpenAPI document)."""


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


def error_responses(
    not_found: str | None = None, conflict: str | None = None, *, auth: bool = True
) -> Responses:
    """The 401 (``auth``), 404 and 409 answers a route documents, with their descriptions."""
    responses: Responses = {}
    if auth:
        responses[401] = {"description": "Missing or invalid API key"}
    if not_found is not None:
        responses[404] = {"description": not_found}
    if conflict is not None:
        responses[409] = {"description": conflict}
    return responses
