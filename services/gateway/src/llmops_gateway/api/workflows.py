"""``/workflows/pipelines``: the workflow pipelines of training jobs, as the workflow worker
reported them (read-only; the gateway never writes a pipeline itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from llmops_gateway.api.auth import CurrentCaller
from llmops_gateway.api.deps import Pagination, State
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.workflows import PipelineList, PipelineOut
from llmops_gateway.domain.workflows import get_pipeline, list_workflow_pipelines
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/workflows/pipelines",
    tag="workflows",
    scope=Scope.GATEWAY,
    not_found="No pipeline of that name was reported",
)
router = routes.router


@routes.page(summary="List pipelines, newest first")
def list_pipelines(
    state: State,
    page: Pagination,
    caller: CurrentCaller,
    job_id: Annotated[
        str | None,
        Query(alias="jobId", max_length=64, description="Only the pipelines of this job."),
    ] = None,
) -> PipelineList:
    pipelines = list_workflow_pipelines(
        state.sessions, job_id=job_id, limit=page.limit, offset=page.offset
    )
    specs = caller.sees_specs()
    return PipelineList.of([PipelineOut.of(p, with_spec=specs) for p in pipelines], page)


@routes.read("/{pipeline_id}", summary="Read a pipeline (id = the workflow name)")
def read(pipeline_id: str, state: State, caller: CurrentCaller) -> PipelineOut:
    """Status, progress, the steps (nodes), start and end, and the rendered manifest from the
    workflow worker's last report; 404 until it has reported the workflow."""
    return PipelineOut.of(get_pipeline(state.sessions, pipeline_id), with_spec=caller.sees_specs())
