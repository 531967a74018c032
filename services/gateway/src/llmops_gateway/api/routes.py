"""How a resource's router declares its routes, the same for every resource.

A resource lives under the API prefix, in one OpenAPI group (its tag), and in one
:class:`~llmops_gateway.security.access.Scope` (where the environment its roles are checked in
comes from). Every route needs a credential: its list and reads need ``viewer``, its commands
``operator`` unless the route says otherwise (see :mod:`llmops_gateway.api.auth`). Its list is
one page, newest first, and documents no error of its own (an empty page is not one). A read
documents the resource's error answers (404, 409); a command changes the resource, answers 202
(the workers act asynchronously) unless told otherwise, and documents the same errors. A
route's response model is its function's return annotation.

Every API router makes its routes with :class:`ApiRoute` (:func:`api_router`), which documents
the answers FastAPI gives before the endpoint runs, so that each status code the app can return
is in the OpenAPI document with the body it really has (``tests/integration/gateway/
test_api_fuzz.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, status
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from fastapi.types import DecoratedCallable
from starlette.routing import compile_path

from llmops_gateway.api.auth import guarded
from llmops_gateway.api.schemas.common import (
    API_PREFIX,
    INVALID_REQUEST,
    NO_SUCH_PATH,
    UNREADABLE_BODY,
    Responses,
    error_responses,
)
from llmops_gateway.security.access import Access, Scope
from llmops_gateway.security.roles import Role


class ApiRoute(APIRoute):
    """A route of the API that also documents the answers FastAPI gives before its endpoint
    runs: 422 (:class:`~llmops_gateway.api.schemas.common.ValidationFailed`) when it takes
    parameters or a body, 400 when it takes a body (one that is not UTF-8 cannot be read as
    JSON), and 404 when its path has parameters (one holding a ``/`` makes a path no route
    has). A route's own ``responses`` refine these (what its 404 or 422 means)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        path_format = compile_path(path)[1]
        calls = [
            endpoint,
            *(d.dependency for d in kwargs.get("dependencies") or () if d.dependency),
        ]
        parameters, body = _inputs([get_dependant(path=path_format, call=call) for call in calls])
        implied: Responses = {}
        if "{" in path:
            implied[404] = NO_SUCH_PATH
        if body:
            implied[400] = UNREADABLE_BODY
        if body or parameters:
            implied[422] = INVALID_REQUEST
        declared: Responses = kwargs.pop("responses", None) or {}
        responses = {
            code: {**implied.get(code, {}), **declared.get(code, {})}
            for code in {**implied, **declared}
        }
        super().__init__(path, endpoint, responses=responses, **kwargs)


def _inputs(dependants: list[Dependant]) -> tuple[bool, bool]:
    """Whether ``dependants`` (the endpoint and the route's dependencies, with theirs) take
    parameters (path, query, header, cookie), and whether they take a body."""
    parameters = body = False
    nodes = list(dependants)
    while nodes:
        node = nodes.pop()
        parameters |= bool(
            node.path_params or node.query_params or node.header_params or node.cookie_params
        )
        body |= bool(node.body_params)
        nodes.extend(node.dependencies)
    return parameters, body


def api_router(prefix: str, *, tag: str) -> APIRouter:
    """The router of the API routes under ``{API_PREFIX}{prefix}`` in the OpenAPI group
    ``tag``."""
    return APIRouter(prefix=f"{API_PREFIX}{prefix}", tags=[tag], route_class=ApiRoute)


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
        return cls(
            api_router(path, tag=tag), error_responses(not_found, conflict, auth=False), scope
        )

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
