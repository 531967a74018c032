"""The chain from data to a live endpoint, read from what the events already recorded (no call
to any tool): dataset version -> training job -> its pipeline and MLflow run -> the model
version it registered -> the values commit github-sync wrote, and the endpoints serving it.

A node is ``<kind>:<id>``; edges always point downstream (from the data towards serving), and a
walk follows them ``down``, ``up`` or ``both`` ways from one node up to ``depth`` hops. The
links between entities:

* a job trained on the dataset version it was pinned to at submission (``dataset_version_id``);
* a job's pipeline and run carry its id;
* a job registered the model version of its pipeline's report (``registered_model_*``);
* a model version's values file is in the commit github-sync reported;
* an endpoint serves a model version when it serves the artifact the version's job registered
  (``storage_uri``, the exact files).

Endpoints of environments the caller may not view are left out, with their edges.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import NotFoundError

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
Direction = Literal["up", "down", "both"]


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


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    relation: str


@dataclass
class Lineage:
    root: str
    nodes: list[Node]
    edges: list[Edge]


Step = tuple[Node, str]
"""A neighbour and the relation of the edge to it."""


class _Walk:
    """The neighbours of each kind of node, read in one session."""

    def __init__(self, session: Session, environments: Collection[str]) -> None:
        self.session = session
        self.environments = set(environments)

    # ------------------------------------------------------------------ nodes

    def find(self, kind: Kind, entity_id: str) -> Node | None:
        s = self.session
        match kind:
            case "dataset-version":
                recorded = s.get(DatasetVersion, entity_id)
                return None if recorded is None else self.dataset_version(recorded)
            case "training-job":
                job = s.get(TrainingJob, entity_id)
                return None if job is None else _job(job)
            case "pipeline":
                query = select(WorkflowPipeline).where(WorkflowPipeline.workflow_name == entity_id)
                pipeline = s.scalars(query).first()
                return None if pipeline is None else _pipeline(pipeline)
            case "experiment-run":
                run = s.scalars(select(ExperimentRun).where(ExperimentRun.run_id == entity_id))
                found = run.first()
                return None if found is None else _run(found)
            case "model-version":
                name, _, version = entity_id.rpartition("/")
                return self.model_version(name, version)
            case "values-commit":
                synced = s.scalars(select(ModelVersion).where(ModelVersion.commit == entity_id))
                first = synced.first()
                return None if first is None else _commit(first)
            case "endpoint":
                endpoint = s.get(ServingDeployment, entity_id)
                return None if endpoint is None else self.endpoint(endpoint)

    def dataset_version(self, version: DatasetVersion) -> Node:
        dataset = self.session.get(CatalogDataset, version.dataset_id)
        name = dataset.name if dataset is not None else version.dataset_id
        return Node("dataset-version", version.id, f"{name}@{version.version}", version.status)

    def model_version(self, name: str, version: str) -> Node | None:
        row = self.session.get(ModelVersion, f"{name}/{version}")
        if row is None and self._registering_job(name, version) is None:
            return None
        links = {"pull_request": row.pull_request} if row and row.pull_request else {}
        status = row.status if row is not None else "Registered"
        return Node("model-version", f"{name}/{version}", f"{name} v{version}", status, None, links)

    def endpoint(self, endpoint: ServingDeployment) -> Node | None:
        if endpoint.environment not in self.environments:
            return None
        links = {"endpoint": endpoint.serve_url} if endpoint.serve_url else {}
        label = f"{endpoint.endpoint_name} ({endpoint.environment})"
        return Node("endpoint", endpoint.id, label, endpoint.status, endpoint.environment, links)

    # ------------------------------------------------------------- neighbours

    def downstream(self, node: Node) -> list[Step]:
        s = self.session
        match node.kind:
            case "dataset-version":
                jobs = s.scalars(
                    select(TrainingJob).where(TrainingJob.dataset_version_id == node.id)
                )
                return [(_job(job), "trained") for job in jobs]
            case "training-job":
                job = s.get(TrainingJob, node.id)
                return [] if job is None else self._job_outputs(job)
            case "model-version":
                return self._model_version_outputs(node.id)
            case _:
                return []

    def upstream(self, node: Node) -> list[Step]:
        s = self.session
        match node.kind:
            case "training-job":
                job = s.get(TrainingJob, node.id)
                pinned = None if job is None or job.dataset_version_id is None else (
                    s.get(DatasetVersion, job.dataset_version_id)
                )  # fmt: skip
                return [] if pinned is None else [(self.dataset_version(pinned), "trained")]
            case "pipeline" | "experiment-run":
                job_id = self._job_id_of(node)
                job = None if job_id is None else s.get(TrainingJob, job_id)
                relation = "ran" if node.kind == "pipeline" else "tracked"
                return [] if job is None else [(_job(job), relation)]
            case "model-version":
                name, _, version = node.id.rpartition("/")
                job = self._registering_job(name, version)
                return [] if job is None else [(_job(job), "registered")]
            case "values-commit":
                synced = s.scalars(select(ModelVersion).where(ModelVersion.commit == node.id))
                steps = [self.model_version(row.name, row.version) for row in synced]
                return [(step, "synced") for step in steps if step is not None]
            case "endpoint":
                return self._served(node.id)
            case _:
                return []

    def _job_outputs(self, job: TrainingJob) -> list[Step]:
        s = self.session
        steps: list[Step] = []
        pipelines = s.scalars(select(WorkflowPipeline).where(WorkflowPipeline.job_id == job.id))
        steps += [(_pipeline(pipeline), "ran") for pipeline in pipelines]
        runs = s.scalars(select(ExperimentRun).where(ExperimentRun.job_id == job.id))
        steps += [(_run(run), "tracked") for run in runs]
        if job.registered_model_name and job.registered_model_version:
            version = self.model_version(job.registered_model_name, job.registered_model_version)
            if version is not None:
                steps.append((version, "registered"))
        return steps

    def _model_version_outputs(self, key: str) -> list[Step]:
        s = self.session
        name, _, version = key.rpartition("/")
        steps: list[Step] = []
        row = s.get(ModelVersion, key)
        if row is not None and row.commit:
            steps.append((_commit(row), "synced"))
        job = self._registering_job(name, version)
        if job is not None and job.model_storage_uri:
            query = select(ServingDeployment).where(
                ServingDeployment.storage_uri == job.model_storage_uri
            )
            endpoints = [self.endpoint(endpoint) for endpoint in s.scalars(query)]
            steps += [(endpoint, "served") for endpoint in endpoints if endpoint is not None]
        return steps

    def _served(self, endpoint_id: str) -> list[Step]:
        s = self.session
        endpoint = s.get(ServingDeployment, endpoint_id)
        if endpoint is None or not endpoint.storage_uri:
            return []
        query = select(TrainingJob).where(TrainingJob.model_storage_uri == endpoint.storage_uri)
        steps: list[Step] = []
        for job in s.scalars(query):
            if job.registered_model_name and job.registered_model_version:
                version = self.model_version(
                    job.registered_model_name, job.registered_model_version
                )
                if version is not None:
                    steps.append((version, "served"))
        return steps

    def _registering_job(self, name: str, version: str) -> TrainingJob | None:
        query = select(TrainingJob).where(
            TrainingJob.registered_model_name == name,
            TrainingJob.registered_model_version == version,
        )
        return self.session.scalars(query.order_by(TrainingJob.created_at.desc())).first()

    def _job_id_of(self, node: Node) -> str | None:
        s = self.session
        if node.kind == "pipeline":
            query = select(WorkflowPipeline.job_id).where(WorkflowPipeline.workflow_name == node.id)
        else:
            query = select(ExperimentRun.job_id).where(ExperimentRun.run_id == node.id)
        return s.scalars(query).first()


def _job(job: TrainingJob) -> Node:
    artifact = (job.spec.get("output") or {}).get("artifact_name")
    label = f"{artifact} ({job.id[:8]})" if artifact else job.id
    return Node("training-job", job.id, label, job.status)


def _pipeline(pipeline: WorkflowPipeline) -> Node:
    where = f"{pipeline.namespace}/{pipeline.workflow_name}" if pipeline.namespace else ""
    links = {"workflow": where} if where else {}
    return Node("pipeline", pipeline.workflow_name, pipeline.workflow_name, pipeline.status,
                None, links)  # fmt: skip


def _run(run: ExperimentRun) -> Node:
    links = {"mlflow": run.tracking_url} if run.tracking_url else {}
    label = f"{run.experiment_name or run.backend} / {run.run_id[:12]}"
    return Node("experiment-run", run.run_id, label, run.status, None, links)


def _commit(row: ModelVersion) -> Node:
    assert row.commit is not None
    links = {"pull_request": row.pull_request} if row.pull_request else {}
    label = f"{row.commit[:12]} {row.path or ''}".strip()
    return Node("values-commit", row.commit, label, row.status, None, links)


def lineage(
    sessions: SessionFactory,
    kind: Kind,
    entity_id: str,
    *,
    direction: Direction,
    depth: int,
    environments: Iterable[str],
) -> Lineage:
    """The graph around ``kind:entity_id``; :class:`NotFoundError` when the platform does not
    know it (or it is an endpoint of an environment the caller may not view)."""
    with sessions() as session:
        walk = _Walk(session, list(environments))
        root = walk.find(kind, entity_id)
        if root is None:
            raise NotFoundError(f"no {kind} {entity_id!r} in the lineage")
        nodes = {root.key: root}
        edges: dict[tuple[str, str], Edge] = {}
        ways: list[tuple[Callable[[Node], list[Step]], bool]] = []
        if direction in ("down", "both"):
            ways.append((walk.downstream, True))
        if direction in ("up", "both"):
            ways.append((walk.upstream, False))
        for neighbours, down in ways:
            frontier = [root]
            for _ in range(depth):
                reached: list[Node] = []
                for node in frontier:
                    for other, relation in neighbours(node):
                        source, target = (node, other) if down else (other, node)
                        edges.setdefault(
                            (source.key, target.key), Edge(source.key, target.key, relation)
                        )
                        if other.key not in nodes:
                            nodes[other.key] = other
                            reached.append(other)
                frontier = reached
                if not frontier:
                    break
        return Lineage(root.key, list(nodes.values()), list(edges.values()))
