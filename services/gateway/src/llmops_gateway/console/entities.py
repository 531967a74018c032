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
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from llmops_gateway.api.deps import State
from llmops_gateway.console.graphs import lineage_svg, pipeline_stages, pipeline_svg
from llmops_gateway.console.links import argo_workflow, git_commit, tool_links, web_url
from llmops_gateway.console.lists import JobViewer, Viewer
from llmops_gateway.console.live import Changes, resume_from, timeline_stream
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
from llmops_shared.events import StatusEntity

router = APIRouter(prefix=CONSOLE_PREFIX, route_class=ConsoleRoute, include_in_schema=False)

After = Annotated[int, Query(ge=0, le=2**62, description="The last timeline row shown.")]
Id = Annotated[str, Path(max_length=320)]
LINEAGE_DEPTH: Final = 10
MAX_DRAWN: Final = 120
"""The most lineage nodes a page draws (the API and ``llmops lineage`` give them all)."""


def console_href(node: Node) -> str | None:
    """A lineage node's own console page, when it has one."""
    path = quote(node.id)  # a model version's id is <name>/<version>: its "/" stays
    match node.kind:
        case "training-job":
            return f"{CONSOLE_PREFIX}/jobs/{path}"
        case "endpoint":
            return f"{CONSOLE_PREFIX}/endpoints/{path}"
        case "dataset-version":
            return f"{CONSOLE_PREFIX}/dataset-versions/{path}"
        case "model-version":
            return f"{CONSOLE_PREFIX}/model-versions/{path}"
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


def drawn(graph: Lineage, limit: int = MAX_DRAWN) -> Lineage:
    """The graph cut to its ``limit`` nodes nearest the root (the walk found them first): a
    dataset version that trained thousands of jobs stays a readable, quick page."""
    if len(graph.nodes) <= limit:
        return graph
    kept = graph.nodes[:limit]
    keys = {node.key for node in kept}
    edges = [e for e in graph.edges if e.source in keys and e.target in keys]
    return Lineage(graph.root, kept, edges)


def lineage_context(
    state: GatewayState, caller: Caller, kind: Kind, entity_id: str
) -> dict[str, Any]:
    whole = _graph(state, caller, kind, entity_id)
    if whole is None:
        return {"lineage": None, "lineage_nodes": []}
    graph = drawn(whole)

    links = {node.key: tool_links(state.settings, node) for node in graph.nodes}

    def href(node: Node) -> str | None:
        return console_href(node) or next(iter(links[node.key].values()), None)

    nodes = [(node, links[node.key]) for node in graph.nodes]
    return {
        "lineage": lineage_svg(graph, href),
        "lineage_nodes": nodes,
        "lineage_total": len(whole.nodes),
        "lineage_command": f"llmops lineage {kind} {entity_id}",
    }


# ------------------------------------------------------------------------- training jobs


def _job_context(
    state: GatewayState, caller: Caller, job_id: str, *, with_timeline: bool = True
) -> dict[str, Any]:
    found = browse.job_page(state.sessions, job_id, with_timeline=with_timeline)
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
    context = await asyncio.to_thread(
        functools.partial(_job_context, state, caller, job_id, with_timeline=False)
    )
    return page(request, "_job_panels.html", caller, **context)


@router.get("/jobs/{job_id}/live")
async def job_live(
    request: Request, state: State, _caller: JobViewer, job_id: Id, after: After = 0
) -> Response:
    return _stream(
        request, state, functools.partial(browse.job_subject_now, state.sessions, job_id), after
    )


def _stream(
    request: Request, state: GatewayState, subject_of: Callable[[], Subject], after: int
) -> Response:
    changes = state.console_changes or Changes()  # without the console mounted: polls only
    body = timeline_stream(
        request,
        browse.history_reader(state.sessions, subject_of),
        changes,
        resume_from(request, after),
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


def _one(entity: StatusEntity, entity_id: str) -> Subject:
    return Subject(frozenset({(entity.value, entity_id)}))


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
        subject=_one(StatusEntity.DEPLOYMENT, endpoint_id),
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
    return _stream(request, state, lambda: _one(StatusEntity.DEPLOYMENT, endpoint_id), after)


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
        subject=_one(StatusEntity.DATASET_VERSION, version_id),
        section="datasets",
        version=version,
        dataset=dataset,
    )


@router.get("/dataset-versions/{version_id}/live")
async def dataset_version_live(
    request: Request, state: State, _caller: Viewer, version_id: Id, after: After = 0
) -> Response:
    return _stream(request, state, lambda: _one(StatusEntity.DATASET_VERSION, version_id), after)


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
        subject=_one(StatusEntity.MODEL_VERSION, key),
        section="models",
        key=key,
        row=row,
        pr_url=web_url(row.pull_request) if row else None,
        commit_url=git_commit(state.settings, row.commit) if row else None,
    )


@router.get("/model-versions/{name}/{version}/live")
async def model_version_live(
    request: Request, state: State, _caller: Viewer, name: Id, version: Id, after: After = 0
) -> Response:
    key = f"{name}/{version}"
    return _stream(request, state, lambda: _one(StatusEntity.MODEL_VERSION, key), after)
