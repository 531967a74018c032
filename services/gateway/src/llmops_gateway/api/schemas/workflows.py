"""Response bodies of ``/workflows/pipelines``, and the pipeline summary a training job shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from llmops_gateway.api.schemas.common import API_PREFIX, CamelModel, Page
from llmops_gateway.db.models import WorkflowPipeline


def pipeline_url(workflow_name: str) -> str:
    return f"{API_PREFIX}/workflows/pipelines/{workflow_name}"


class PipelineProgressOut(CamelModel):
    """Finished steps out of all steps, as last reported (null until reported)."""

    done: int | None
    total: int | None

    @classmethod
    def of(cls, pipeline: WorkflowPipeline) -> PipelineProgressOut:
        return cls(done=pipeline.progress_done, total=pipeline.progress_total)


def _computed(pipeline: WorkflowPipeline) -> dict[str, Any]:
    """What every view of a pipeline shows besides its columns: its id (the workflow name) and
    its progress."""
    return {"id": pipeline.workflow_name, "progress": PipelineProgressOut.of(pipeline)}


class PipelineSummaryOut(CamelModel):
    """The pipeline running a training job, in the job's view."""

    id: str = Field(description="The workflow name (train-<job id>).")
    status: str
    progress: PipelineProgressOut
    started_at: datetime | None
    finished_at: datetime | None
    pipeline_url: str

    @classmethod
    def of(cls, pipeline: WorkflowPipeline) -> PipelineSummaryOut:
        url = pipeline_url(pipeline.workflow_name)
        return cls.from_row(pipeline, **_computed(pipeline), pipeline_url=url)


class PipelineNodeOut(CamelModel):
    """One step of the workflow (an Argo node, a Job, a rendered stage)."""

    name: str | None = None
    phase: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None


class PipelineOut(CamelModel):
    """A workflow pipeline as the workflow worker last reported it."""

    id: str = Field(description="The workflow name (train-<job id>).")
    job_id: str | None
    workflow_name: str
    namespace: str | None
    backend: str | None = Field(description="argo, job, local or manifests.")
    status: str = Field(description="The reported phase.")
    reason: str | None = Field(description="The reported message, e.g. why it failed.")
    progress: PipelineProgressOut
    nodes: list[PipelineNodeOut]
    started_at: datetime | None
    finished_at: datetime | None
    observed_at: datetime | None = Field(description="When the last applied report was observed.")
    manifest: dict[str, Any] | None = Field(
        description="The rendered Workflow (or Job manifests) as last reported; null for a "
        "viewer (it holds the spec's data and model locations)."
    )

    @classmethod
    def of(cls, pipeline: WorkflowPipeline, *, with_spec: bool = True) -> PipelineOut:
        nodes = [PipelineNodeOut.model_validate(node) for node in pipeline.nodes or []]
        manifest = pipeline.manifest if with_spec else None
        return cls.from_row(pipeline, **_computed(pipeline), nodes=nodes, manifest=manifest)


class PipelineList(Page[PipelineOut]):
    pass
