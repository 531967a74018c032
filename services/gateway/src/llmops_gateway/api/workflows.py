"""``/workflows/pipelines``: the workflow pipelines of training jobs, as the workflow worker
reported them (read-only; the gateway never writes a pipeline itself)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from llmops_gateway.api.deps import Sessions
from llmops_gateway.api.schemas import API_PREFIX, PipelineList, PipelineOut
from llmops_gateway.db import repository
from llmops_gateway.domain.workflows import get_pipeline

router = APIRouter(prefix=f"{API_PREFIX}/workflows/pipelines", tags=["workflows"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No pipeline of that name was reported"},
}


@router.get("", response_model=PipelineList, summary="List pipelines, newest first")
def list_pipelines(
    sessions: Sessions,
    job_id: Annotated[
        str | None,
        Query(alias="jobId", max_length=64, description="Only the pipelines of this job."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PipelineList:
    with sessions() as session:
        pipelines = repository.list_workflow_pipelines(
            session, job_id=job_id, limit=limit, offset=offset
        )
    return PipelineList(items=[PipelineOut.of(p) for p in pipelines], limit=limit, offset=offset)


@router.get(
    "/{pipeline_id}",
    response_model=PipelineOut,
    responses=_ERRORS,
    summary="Read a pipeline (id = the workflow name)",
)
def read(pipeline_id: str, sessions: Sessions) -> PipelineOut:
    """Status, progress, the steps (nodes), start and end, and the rendered manifest from the
    workflow worker's last report; 404 until it has reported the workflow."""
    return PipelineOut.of(get_pipeline(sessions, pipeline_id))
