"""One entity's page: what it is, its live timeline, its pipeline, its lineage, its tools.

Pages exist for training jobs, endpoints, dataset versions and model versions. Each shows the
``status_history`` of the status entities it is made of (a job: itself, its pipeline and its
experiment run) and follows it live (``/live``, Server-Sent Events, see
:mod:`llmops_gateway.console.live`); after each report the page reloads its ``/panels``
(status, pipeline DAG, lineage graph), rendered here from the committed read model.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from llmops_gateway.api.deps import State
from llmops_gateway.console.graphs import lineage_svg, pipeline_stages, pipeline_svg
from llmops_gateway.console.links import argo_workflow, tool_links, web_url
from llmops_gateway.console.lists import JobViewer, Viewer
from llmops_gateway.console.live import Changes, reader, resume_from, timeline_stream
from llmops_gateway.console.routing import ConsoleRoute
from llmops_gateway.console.session import CONSOLE_PREFIX
from llmops_gateway.console.templating import SECURITY_HEADERS, page
from llmops_gateway.domain import browse
from llmops_gateway.domain.browse import Subject
from llmops_gateway.domain.errors import NotFoundError
from llmops_gateway.domain.lineage import Kind, Lineage, Node, lineage
from llmops_gateway.domain.serving import get_endpoint
from llmops_gateway.security.access import Caller
from llmops_gateway.state import GatewayState

router = APIRouter(prefix=CONSOLE_PREFIX, route_class=ConsoleRoute, include_in_schema=False)

After = Annotated[int, Query(ge=0, le=2**62, description="The last timeline row shown.")]
Id = Annotated[str, Path(max_length=320)]
LINEAGE_DEPTH: Final = 10


def console_href(node: Node) -> str | None:
    """A lineage node's own console page, when it has one."""
    match node.kind:
        case "training-job":
            return f"{CONSOLE_PREFIX}/jobs/{node.id}"
        case "endpoint":
            return f"{CONSOLE_PREFIX}/endpoints/{node.id}"
        case "dataset-version":
            return f"{CONSOLE_PREFIX}/dataset-versions/{node.id}"
        case "model-version":
            return f"{CONSOLE_PREFIX}/model-versions/{node.id}"
    return None


def _graph(state: GatewayState, caller: Caller, kind: Kind, entity_id: str) -> Lineage | None:
    try:
        return lineage(
            state.sessions,
            kind,
            entity_id,
            direction="both",
            depth=LINEAGE_DEPTH,
            environments=caller.viewable(),
        )
    except NotFoundError:
        return None  # known to its own table but not yet to the lineage (no report folded)


def lineage_context(
    state: GatewayState, caller: Caller, kind: Kind, entity_id: str
) -> dict[str, Any]:
    graph = _graph(state, caller, kind, entity_id)
    if graph is None:
        return {"lineage": None, "lineage_nodes": []}

    def href(node: Node) -> str | None:
        links = tool_links(state.settings, node)
        return console_href(node) or next(iter(links.values()), None)

    nodes = [(node, tool_links(state.settings, node)) for node in graph.nodes]
    return {"lineage": lineage_svg(graph, href), "lineage_nodes": nodes}


# ------------------------------------------------------------------------- training jobs


def _job_context(state: GatewayState, caller: Caller, job_id: str) -> dict[str, Any]:
    found = browse.job_page(state.sessions, job_id)
    if found is None:
        raise NotFoundError(f"no training job {job_id!r}")
    pipeline = found.pipeline
    stages = pipeline_stages(pipeline.manifest, pipeline.nodes or []) if pipeline else []
    return {
        "found": found,
        "job": found.job,
        "stages": stages,
        "dag": pipeline_svg(stages) if stages else None,
        "argo_url": argo_workflow(state.settings, pipeline.namespace, pipeline.workflow_name)
        if pipeline
        else None,
        "mlflow_url": web_url(found.run.tracking_url) if found.run else None,
        **lineage_context(state, caller, "training-job", job_id),
    }


@router.get("/jobs/{job_id}")
async def job(request: Request, state: State, caller: JobViewer, job_id: Id) -> Response:
    context = await asyncio.to_thread(_job_context, state, caller, job_id)
    timeline = context["found"].timeline
    return page(
        request,
        "job.html",
        caller,
        section="jobs",
        timeline=timeline,
        after=timeline[-1].id if timeline else 0,
        live_url=f"{CONSOLE_PREFIX}/jobs/{job_id}/live",
        panels_url=f"{CONSOLE_PREFIX}/jobs/{job_id}/panels",
        **context,
    )


@router.get("/jobs/{job_id}/panels")
async def job_panels(request: Request, state: State, caller: JobViewer, job_id: Id) -> Response:
    context = await asyncio.to_thread(_job_context, state, caller, job_id)
    return page(request, "_job_panels.html", caller, **context)


def _job_subject(state: GatewayState, job_id: str) -> Subject:
    found = browse.job_page(state.sessions, job_id)
    return found.subject if found is not None else browse.job_subject(job_id, None, None)


@router.get("/jobs/{job_id}/live")
async def job_live(
    request: Request, state: State, _caller: JobViewer, job_id: Id, after: After = 0
) -> Response:
    return _stream(request, state, functools.partial(_job_subject, state, job_id), after)


def _stream(
    request: Request, state: GatewayState, subject_of: Callable[[], Subject], after: int
) -> Response:
    changes = state.console_changes or Changes()  # without the console mounted: polls only
    body = timeline_stream(
        request, reader(state.sessions, subject_of), changes, resume_from(request, after)
    )
    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}  # proxies must not buffer it
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


# ------------------------------------------------------------- endpoints and the catalog


def _simple_page(
    request: Request,
    state: GatewayState,
    caller: Caller,
    *,
    template: str,
    kind: Kind,
    entity_id: str,
    subject: Subject,
    section: str,
    **context: Any,
) -> Response:
    timeline = browse.entity_history(state.sessions, subject)
    return page(
        request,
        template,
        caller,
        section=section,
        timeline=timeline,
        after=timeline[-1].id if timeline else 0,
        live_url=f"{request.url.path}/live",
        **lineage_context(state, caller, kind, entity_id),
        **context,
    )


def _one(entity: str, entity_id: str) -> Subject:
    return Subject(frozenset({(entity, entity_id)}))


@router.get("/endpoints/{endpoint_id}")
async def endpoint(request: Request, state: State, caller: Viewer, endpoint_id: Id) -> Response:
    row = await asyncio.to_thread(get_endpoint, state.sessions, endpoint_id)
    caller.require_in(row.environment, caller.access.role)
    return await asyncio.to_thread(
        _simple_page,
        request,
        state,
        caller,
        template="endpoint.html",
        kind="endpoint",
        entity_id=endpoint_id,
        subject=_one("deployment", endpoint_id),
        section="endpoints",
        endpoint=row,
        serve_url=web_url(row.serve_url),
    )


@router.get("/endpoints/{endpoint_id}/live")
async def endpoint_live(
    request: Request, state: State, caller: Viewer, endpoint_id: Id, after: After = 0
) -> Response:
    row = await asyncio.to_thread(get_endpoint, state.sessions, endpoint_id)
    caller.require_in(row.environment, caller.access.role)
    return _stream(request, state, lambda: _one("deployment", endpoint_id), after)


@router.get("/dataset-versions/{version_id}")
async def dataset_version(
    request: Request, state: State, caller: Viewer, version_id: Id
) -> Response:
    found = await asyncio.to_thread(browse.dataset_version, state.sessions, version_id)
    if found is None:
        raise NotFoundError(f"no dataset version {version_id!r}")
    version, dataset = found
    return await asyncio.to_thread(
        _simple_page,
        request,
        state,
        caller,
        template="dataset_version.html",
        kind="dataset-version",
        entity_id=version_id,
        subject=_one("dataset_version", version_id),
        section="datasets",
        version=version,
        dataset=dataset,
    )


@router.get("/dataset-versions/{version_id}/live")
async def dataset_version_live(
    request: Request, state: State, _caller: Viewer, version_id: Id, after: After = 0
) -> Response:
    return _stream(request, state, lambda: _one("dataset_version", version_id), after)


@router.get("/model-versions/{name}/{version}")
async def model_version(
    request: Request, state: State, caller: Viewer, name: Id, version: Id
) -> Response:
    key = f"{name}/{version}"
    row = await asyncio.to_thread(browse.model_version, state.sessions, key)
    return await asyncio.to_thread(
        _simple_page,
        request,
        state,
        caller,
        template="model_version.html",
        kind="model-version",
        entity_id=key,
        subject=_one("model_version", key),
        section="models",
        key=key,
        row=row,
    )


@router.get("/model-versions/{name}/{version}/live")
async def model_version_live(
    request: Request, state: State, _caller: Viewer, name: Id, version: Id, after: After = 0
) -> Response:
    key = f"{name}/{version}"
    return _stream(request, state, lambda: _one("model_version", key), after)
