"""How a resource's router declares its routes, the same for every resource.

A resource lives under the API prefix, in one OpenAPI group (its tag), and in one
:class:`~llmops_gateway.security.access.Scope` (where the environment its roles are checked in
comes from). Every route needs a credential: its list and reads need ``viewer``, its commands
``operator`` unless the route says otherwise (see :mod:`llmops_gateway.api.auth`). Its list is
one page, newest first, and documents no error of its own (an empty page is not one). A read
documents the resource's error answers (404, 409); a command changes the resource, answers 202
(the workers act asynchronously) unless told otherwise, and documents the same errors. A
route's response model is its function's return annotation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, status
from fastapi.types import DecoratedCallable

from llmops_gateway.api.auth import guarded
from llmops_gateway.api.schemas.common import API_PREFIX, Responses, error_responses
from llmops_gateway.security.access import Access, Scope
from llmops_gateway.security.roles import Role


@dataclass(frozen=True)
class Routes:
    """The routes of one resource: its ``router``, the ``errors`` its routes document and the
    ``scope`` of its roles."""

    router: APIRouter
    errors: Responses
    scope: Scope

    @classmethod
    def at(
        cls, path: str, *, tag: str, scope: Scope, not_found: str, conflict: str | None = None
    ) -> Routes:
        """The routes under ``{API_PREFIX}{path}`` tagged ``tag``, documenting the resource's
        404 (``not_found``) and 409 (``conflict``) answers."""
        router = APIRouter(prefix=f"{API_PREFIX}{path}", tags=[tag])
        return cls(router, error_responses(not_found, conflict, auth=False), scope)

    def page(self, *, summary: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """The ``GET`` of the collection itself (one page of it). A collection whose members
        each have their own environment (``TARGET``) is listed to any viewer, filtered to the
        environments the caller may see."""
        scope = Scope.ANY if self.scope is Scope.TARGET else self.scope
        return self.router.get("", summary=summary, **guarded(Access(Role.VIEWER, scope)))

    def read(
        self, path: str, *, summary: str, responses: Responses | None = None
    ) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """A ``GET`` documenting the resource's errors (and ``responses``, its own)."""
        access = Access(Role.VIEWER, self.scope)
        return self.router.get(
            path, summary=summary, **guarded(access, {**self.errors, **(responses or {})})
        )

    def command(
        self,
        path: str,
        *,
        summary: str,
        method: str = "POST",
        status_code: int = status.HTTP_202_ACCEPTED,
        role: Role = Role.OPERATOR,
        scope: Scope | None = None,
    ) -> Callable[[DecoratedCallable], DecoratedCallable]:
        """A ``method`` (202 by default) documenting the resource's errors; ``scope`` when the
        command reaches further than its resource (a restore writes files)."""
        return self.router.api_route(
            path,
            methods=[method],
            status_code=status_code,
            summary=summary,
            **guarded(Access(role, scope or self.scope), self.errors),
        )
