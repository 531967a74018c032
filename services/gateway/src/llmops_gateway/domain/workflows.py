"""Workflow pipelines: read-only for the gateway, written by the status folding.

The workflow worker runs each training job as a pipeline (an Argo Workflow ``train-<job id>``,
built-in Jobs, or rendered manifests) and reports it on ``llmops.status``; the reports are
folded into ``workflow_pipelines`` by :mod:`llmops_gateway.domain.status`.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmops_gateway.db import repository
from llmops_gateway.db.models import WorkflowPipeline
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import found


def get_pipeline(sessions: SessionFactory, workflow_name: str) -> WorkflowPipeline:
    """The pipeline of the workflow named ``workflow_name``, or ``NotFoundError``."""
    with sessions() as session:
        pipeline = repository.workflow_pipeline(session, workflow_name)
    return found(pipeline, f"workflow pipeline {workflow_name}")


def list_workflow_pipelines(
    sessions: SessionFactory, *, job_id: str | None, limit: int, offset: int
) -> Sequence[WorkflowPipeline]:
    """One page of pipelines (of one job when ``job_id``), newest first."""
    with sessions() as session:
        return repository.list_workflow_pipelines(
            session, job_id=job_id, limit=limit, offset=offset
        )
