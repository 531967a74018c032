"""Workflow pipelines: read-only for the gateway, written by the status folding.

The workflow worker runs each training job as a pipeline (an Argo Workflow ``train-<job id>``,
built-in Jobs, or rendered manifests) and reports it on ``llmops.status``; the reports are
folded into ``workflow_pipelines`` by :mod:`llmops_gateway.domain.status`.
"""

from __future__ import annotations

from collections.abc import Collection

from llmops_gateway.db import repository
from llmops_gateway.db.models import WorkflowPipeline
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import NotFoundError


def get_pipeline(sessions: SessionFactory, workflow_name: str) -> WorkflowPipeline:
    """The pipeline of the workflow named ``workflow_name``, or :class:`NotFoundError`."""
    with sessions() as session:
        pipeline = repository.workflow_pipeline(session, workflow_name)
    if pipeline is None:
        raise NotFoundError(f"workflow pipeline {workflow_name} not found")
    return pipeline


def pipelines_of_jobs(
    sessions: SessionFactory, job_ids: Collection[str]
) -> dict[str, WorkflowPipeline]:
    """The newest reported pipeline of each job that has one."""
    with sessions() as session:
        return repository.pipelines_of_jobs(session, job_ids)
