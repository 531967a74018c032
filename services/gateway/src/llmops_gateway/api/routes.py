"""How a resource's router declares its routes, the same for every resource.

A resource lives under the API prefix, in one OpenAPI group (its tag). Its list is one page,
newest first, and documents no error (an empty page is not one). A read documents the
resource's error answers (404, 409, 401 where they apply); a command changes the resource: it
needs an API key, answers 202 (the workers act asynchronously) unless told otherwise, and
documents the same errors. A route's response model is its function's return annotation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, status
from fastapi.types import DecoratedCallable

from llmops_gateway.api.deps import Authenticated
from llmops_gateway.api.schemas.common import API_PREFIX, Responses, error_responses


@dataclass(frozen=True)
class Routes:
    """The routes of one resource: its ``router`` and the ``errors`` its routes document."""

    router: APIRouter
    errors: Responses

    @classmethod
    def at(
        cls,
        path: str,
        *,
        tag: str,
        not_found: str,
        conflict: str | None = None,
        auth: bool = True,
    ) -> Routes:
        """The routes under ``{API_PREFIX}{path}`` tagged ``tag``, documenting the resource's
        404 (``not_found``), 409 (``conflict``) and, with ``auth``, 401 answers."""
        router = APIRouter(prefix=f"{API_PREFIX}{path}", tags=[tag])
        return cls(router, error_responses(not_found, conflict, auth=auth))

    def page(self, *, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """The ``GET`` of the collection itself (one page of it): no error answers."""
        return self.router.get("", summary=summary)

    def read(
        self, path: str, *, summary: str, responses: Responses | None = None
    ) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """A ``GET`` documenting the resource's errors (and ``responses``, its own)."""
        return self.router.get(
            path, responses={**self.errors, **(responses or {})}, summary=summary
        )

    def command(
        self,
        path: str,
        *,
        summary: str,
        method: str = "POST",
        status_code: int = status.HTTP_202_ACCEPTED,
    ) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """An authenticated ``method`` (202 by default) documenting the resource's errors."""
        return self.router.api_route(
            path,
            methods=[method],
            status_code=status_code,
            dependencies=[Authenticated],
            responses=self.errors,
            summary=summary,
        )
