"""Use-case errors and infrastructure failures as ``{"detail": ...}`` JSON responses.

Bad input is always a 4xx (FastAPI's own 422 for validation); the database being down is a 503
so clients retry, not a 500 that reads like a bug.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from llmops_gateway.domain.errors import (
    CatalogRuleError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
)
from llmops_gateway.security.access import AccessDenied
from llmops_shared.logging import get_logger
from llmops_shared.specs import violations_to_validation_error
from llmops_shared.streams.errors import describe
from llmops_shared.uris import CREDENTIALS_IN_URI

_log = get_logger(__name__)


def rules_refused(
    exc: CatalogRuleError, title: str, loc_prefix: tuple[str, ...]
) -> RequestValidationError:
    """A catalog-rule refusal as FastAPI's own 422, each violation at ``loc_prefix`` + its
    ``loc`` (the body path of the model the rules checked), like the schema rules' errors."""
    error = violations_to_validation_error(title, exc.violations, loc_prefix)
    return RequestValidationError(error.errors(include_url=False))


async def _validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 body, except that an error about a secret does not echo it."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    shown = [
        {k: v for k, v in error.items() if k != "input"}
        if error.get("type") == CREDENTIALS_IN_URI
        else error
        for error in errors
    ]
    return JSONResponse(
        {"detail": jsonable_encoder(shown)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def _forbidden(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_403_FORBIDDEN)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    retry_after = exc.retry_after if isinstance(exc, UnavailableError) else None
    return JSONResponse(
        {"detail": str(exc)},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers=None if retry_after is None else {"Retry-After": str(retry_after)},
    )


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    _log.error("database_unavailable", error=describe(exc))
    return JSONResponse(
        {"detail": "database unavailable, retry later"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


async def _value_does_not_fit(_: Request, exc: Exception) -> JSONResponse:
    """A value the schema accepted but the database cannot store (too long for its column, a
    NUL character on PostgreSQL): the request is at fault, so a 422, and nothing was stored."""
    _log.warning("value_rejected_by_database", error=describe(exc))
    return JSONResponse(
        {"detail": "a value in the request is too long or contains characters that cannot "
                   "be stored (e.g. NUL); nothing was stored"},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, except that a 405 lists in ``Allow`` every method of the path the
    request names, not only those of the first route that matched it (a collection's list and
    create are two routes). The path is the most specific template that matches, as in OpenAPI
    (``/catalog/models/import`` rather than ``/catalog/models/{model_id}``)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        matched = [
            route
            for route in iter_route_contexts(request.app.router.routes)
            if route.matches(request.scope)[0] is not Match.NONE and route.methods
        ]
        if matched:
            fewest = min(str(route.path).count("{") for route in matched)
            allowed = {
                method
                for route in matched
                if str(route.path).count("{") == fewest
                for method in route.methods or ()
            }
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mappings on ``app``."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(AccessDenied, _forbidden)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(InvalidRequestError, _invalid_request)
    app.add_exception_handler(UnavailableError, _unavailable)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(DataError, _value_does_not_fit)
