"""The chain from data to a live endpoint, read from what the events already recorded (no call
to any tool): dataset version -> training job -> its pipeline and MLflow run -> the model
version it registered -> the values commit github-sync wrote, and the endpoints serving it.

A node is ``<kind>:<id>``; edges always point downstream (from the data towards serving), and a
walk follows them ``down``, ``up`` or ``both`` ways (ancestors and descendants, not siblings)
from one node up to ``depth`` hops. The links between entities:

* a job trained on the dataset version it was pinned to at submission (``dataset_version_id``);
* a job's pipeline and run carry its id;
* a job registered the model version of its pipeline's report (``registered_model_*``);
* a model version's values file is in the commit github-sync reported;
* an endpoint serves a model version when it serves the artifact the version's job registered
  (``storage_uri``, the exact files).

Each hop reads a whole frontier at once (:mod:`.lineage_reads`). Endpoints of environments
the caller may not view are left out, with their edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from llmops_gateway.db.models import (
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.errors import NotFoundError
from llmops_gateway.domain.lineage_nodes import (
    KINDS,
    Kind,
    Node,
    commit_node,
    job_node,
    pipeline_node,
    run_node,
)
from llmops_gateway.domain.lineage_reads import Hop, Reads

__all__ = ["KINDS", "Direction", "Edge", "Kind", "Lineage", "Node", "lineage"]

Direction = Literal["up", "down", "both"]


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


def _root(reads: Reads, kind: Kind, entity_id: str) -> Node | None:
    """The node the walk starts from; None when the platform does not know it."""
    one = [entity_id]
    match kind:
        case "dataset-version":
            versions = reads.rows(DatasetVersion, DatasetVersion.id, one)
            return next(iter(reads.version_nodes(versions).values()), None)
        case "training-job":
            jobs = reads.rows(TrainingJob, TrainingJob.id, one)
            return job_node(jobs[0]) if jobs else None
        case "pipeline":
            pipelines = reads.rows(WorkflowPipeline, WorkflowPipeline.workflow_name, one)
            return pipeline_node(pipelines[0]) if pipelines else None
        case "experiment-run":
            runs = reads.rows(ExperimentRun, ExperimentRun.run_id, one)
            return run_node(runs[0]) if runs else None
        case "model-version":
            name, _, version = entity_id.rpartition("/")
            return reads.model_version_nodes([(name, version)]).get(entity_id)
        case "values-commit":
            synced = reads.rows(ModelVersion, ModelVersion.commit, one)
            return commit_node(synced[0]) if synced else None
        case "endpoint":
            return next(iter(reads.endpoints(ServingDeployment.id, one)), None)


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
        reads = Reads(session, list(environments))
        root = _root(reads, kind, entity_id)
        if root is None:
            raise NotFoundError(f"no {kind} {entity_id!r} in the lineage")
        nodes = {root.key: root}
        edges: dict[tuple[str, str], Edge] = {}
        ways: list[tuple[Callable[[str, Sequence[str]], list[Hop]], bool]] = []
        if direction in ("down", "both"):
            ways.append((reads.down, True))
        if direction in ("up", "both"):
            ways.append((reads.up, False))
        for step, down in ways:
            frontier = [root]
            for _ in range(depth):
                by_kind: dict[str, list[str]] = defaultdict(list)
                for node in frontier:
                    by_kind[node.kind].append(node.id)
                reached: list[Node] = []
                for node_kind, ids in by_kind.items():
                    for key, other, relation in step(node_kind, ids):
                        source, target = (key, other.key) if down else (other.key, key)
                        edges.setdefault((source, target), Edge(source, target, relation))
                        if other.key not in nodes:
                            nodes[other.key] = other
                            reached.append(other)
                frontier = reached
                if not frontier:
                    break
        return Lineage(root.key, list(nodes.values()), list(edges.values()))
