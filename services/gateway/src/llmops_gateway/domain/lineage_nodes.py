"""The nodes of the lineage graph and how each entity becomes one: a kind, an id, a label a
person recognises, its status and where to look at it in its own tool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from llmops_gateway.db.models import (
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)

Kind = Literal[
    "dataset-version",
    "training-job",
    "pipeline",
    "experiment-run",
    "model-version",
    "values-commit",
    "endpoint",
]
KINDS: Final[tuple[str, ...]] = get_args(Kind)


@dataclass(frozen=True)
class Node:
    kind: Kind
    id: str
    label: str
    status: str | None = None
    environment: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    """Where a person looks at it in its own tool (MLflow run, pull request, the endpoint)."""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


def version_node(version: DatasetVersion, dataset_name: str) -> Node:
    return Node("dataset-version", version.id, f"{dataset_name}@{version.version}", version.status)


def job_node(job: TrainingJob) -> Node:
    artifact = (job.spec.get("output") or {}).get("artifact_name")
    label = f"{artifact} ({job.id[:8]})" if artifact else job.id
    return Node("training-job", job.id, label, job.status)


def pipeline_node(pipeline: WorkflowPipeline) -> Node:
    where = f"{pipeline.namespace}/{pipeline.workflow_name}" if pipeline.namespace else ""
    links = {"workflow": where} if where else {}
    return Node(
        "pipeline", pipeline.workflow_name, pipeline.workflow_name, pipeline.status, None, links
    )


def run_node(run: ExperimentRun) -> Node:
    links = {"mlflow": run.tracking_url} if run.tracking_url else {}
    label = f"{run.experiment_name or run.backend} / {run.run_id[:12]}"
    return Node("experiment-run", run.run_id, label, run.status, None, links)


def model_version_node(key: str, synced: ModelVersion | None) -> Node:
    """``name/version``: github-sync's row when it reported one, else a Registered version."""
    name, _, version = key.rpartition("/")
    links = {"pull_request": synced.pull_request} if synced and synced.pull_request else {}
    status = synced.status if synced is not None else "Registered"
    return Node("model-version", key, f"{name} v{version}", status, None, links)


def commit_node(row: ModelVersion) -> Node:
    commit = row.commit or ""
    links = {"pull_request": row.pull_request} if row.pull_request else {}
    label = f"{commit[:12]} {row.path or ''}".strip()
    return Node("values-commit", commit, label, row.status, None, links)


def endpoint_node(endpoint: ServingDeployment) -> Node:
    links = {"endpoint": endpoint.serve_url} if endpoint.serve_url else {}
    label = f"{endpoint.endpoint_name} ({endpoint.environment})"
    return Node("endpoint", endpoint.id, label, endpoint.status, endpoint.environment, links)
