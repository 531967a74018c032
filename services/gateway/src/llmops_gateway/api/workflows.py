"""``/workflows/pipelines``: the workflow pipelines of training jobs, as the workflow worker
reported them (read-only; the gateway never writes a pipeline itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from llmops_gateway.api.deps import Limit, Offset, State
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.common import API_PREFIX, error_responses
from llmops_gateway.api.schemas.workflows import PipelineList, PipelineOut
from llmops_gateway.domain.workflows import get_pipeline, list_workflow_pipelines

router = APIRouter(prefix=f"{API_PREFIX}/workflows/pipelines", tags=["workflows"])
routes = Routes(router, error_responses("No pipeline of that name was reported", auth=False))


@router.get("", response_model=PipelineList, summary="List pipelines, newest first")
def list_pipelines(
    state: State,
    job_id: Annotated[
        str | None,
        Query(alias="jobId", max_length=64, description="Only the pipelines of this job."),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PipelineList:
    pipelines = list_workflow_pipelines(state.sessions, job_id=job_id, limit=limit, offset=offset)
    return PipelineList(items=[PipelineOut.of(p) for p in pipelines], limit=limit, offset=offset)


@routes.read("/{pipeline_id}", summary="Read a pipeline (id = the workflow name)")
def read(pipeline_id: str, state: State) -> PipelineOut:
    """Status, progress, the steps (nodes), start and end, and the rendered manifest from the
    workflow worker's last report; 404 until it has reported the workflow."""
    return PipelineOut.of(get_pipeline(state.sessions, pipeline_id))
