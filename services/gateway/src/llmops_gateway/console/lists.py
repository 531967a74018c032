"""The console's lists: training jobs, endpoints, datasets and their versions, models and model
versions, each narrowed by the filters of :mod:`llmops_gateway.domain.browse`.

Same rules as the API's lists: jobs need the viewer role in the gateway's environment,
endpoints are shown only for the environments the caller views, the catalog to any viewer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from llmops_gateway.api.deps import State
from llmops_gateway.console.routing import ConsoleRoute
from llmops_gateway.console.session import CONSOLE_PREFIX, console_caller
from llmops_gateway.console.templating import page
from llmops_gateway.domain import browse
from llmops_gateway.domain.browse import Filters
from llmops_gateway.domain.serving import DELETE_FAILED, DELETING
from llmops_gateway.security.access import VIEW_ANY, Access, Caller, Scope
from llmops_gateway.security.roles import ENVIRONMENTS, Role
from llmops_shared.events import Phase

router = APIRouter(prefix=CONSOLE_PREFIX, route_class=ConsoleRoute, include_in_schema=False)

VIEW_JOBS: Final = Access(Role.VIEWER, Scope.GATEWAY)
Viewer = Annotated[Caller, Depends(console_caller(VIEW_ANY))]
JobViewer = Annotated[Caller, Depends(console_caller(VIEW_JOBS))]
Text = Annotated[str, Query(max_length=256)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]

ENDPOINT_STATUSES: Final = (
    *(phase.value for phase in Phase if phase != Phase.DELETED),
    DELETING,
    DELETE_FAILED,
)
"""What an endpoint's status can be: a reported phase, or one of its delete's own."""


def filters(status: Text = "", q: Text = "", model: Text = "", offset: Offset = 0) -> Filters:
    return Filters(status=status, text=q, model=model, offset=offset)


ListFilters = Annotated[Filters, Depends(filters)]


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse(f"{CONSOLE_PREFIX}/jobs", status_code=303)


@router.get("/jobs")
async def jobs(request: Request, state: State, caller: JobViewer, chosen: ListFilters) -> Response:
    listing = await asyncio.to_thread(browse.training_jobs, state.sessions, chosen)
    return page(request, "jobs.html", caller, listing=listing, section="jobs")


@router.get("/endpoints")
async def endpoints(
    request: Request,
    state: State,
    caller: Viewer,
    chosen: ListFilters,
    environment: Text = "",
) -> Response:
    narrowed = Filters(chosen.status, chosen.text, chosen.model, environment, chosen.offset)
    listing = await asyncio.to_thread(browse.endpoints, state.sessions, narrowed, caller.viewable())
    return page(
        request,
        "endpoints.html",
        caller,
        listing=listing,
        statuses=ENDPOINT_STATUSES,
        environments=[env for env in ENVIRONMENTS if env in caller.viewable()],
        section="endpoints",
    )


@router.get("/datasets")
async def datasets(request: Request, state: State, caller: Viewer, chosen: ListFilters) -> Response:
    listing = await asyncio.to_thread(browse.datasets, state.sessions, chosen)
    return page(request, "datasets.html", caller, listing=listing, section="datasets")


@router.get("/models")
async def models(request: Request, state: State, caller: Viewer, chosen: ListFilters) -> Response:
    catalog = await asyncio.to_thread(browse.catalog_models, state.sessions, chosen)
    versions = await asyncio.to_thread(browse.model_versions, state.sessions, chosen)
    return page(
        request, "models.html", caller, catalog=catalog, versions=versions, section="models"
    )
