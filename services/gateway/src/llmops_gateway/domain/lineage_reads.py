"""The lineage's reads, a whole frontier at a time: every query takes the ids of all the nodes
one hop away (``IN``), so a walk costs a few queries per hop, not a few per node (a dataset
version that trained 1,000 jobs is one query for the jobs, one for their pipelines...).

Each function returns, for the nodes given, the neighbours one way and the relation of each
edge, as ``(node key, neighbour, relation)``; :mod:`llmops_gateway.domain.lineage` walks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops_gateway.db import repository
from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
)
from llmops_gateway.domain.lineage_nodes import (
    Node,
    commit_node,
    endpoint_node,
    job_node,
    model_version_node,
    pipeline_node,
    run_node,
    version_node,
)

Hop = tuple[str, Node, str]
"""From the node with this key, to this neighbour, by this relation."""


class Reads:
    """Batched reads in one session; endpoints outside ``environments`` are never returned."""

    def __init__(self, session: Session, environments: Collection[str]) -> None:
        self.session = session
        self.environments = set(environments)

    # -------------------------------------------------------------- entities

    def rows(self, model: Any, column: Any, values: Iterable[Any]) -> Sequence[Any]:
        wanted = sorted(set(values))
        if not wanted:
            return []
        return self.session.scalars(select(model).where(column.in_(wanted))).all()

    def version_nodes(self, versions: Sequence[DatasetVersion]) -> dict[str, Node]:
        datasets = {
            dataset.id: dataset.name
            for dataset in self.rows(
                CatalogDataset, CatalogDataset.id, (v.dataset_id for v in versions)
            )
        }
        return {v.id: version_node(v, datasets.get(v.dataset_id, v.dataset_id)) for v in versions}

    def model_version_nodes(
        self, pairs: Iterable[tuple[str, str]], known_registered: bool = False
    ) -> dict[str, Node]:
        """The model versions ``name/version``: github-sync's row when it reported one, else
        (when a job registered it) a Registered one."""
        keys = {f"{name}/{version}" for name, version in pairs}
        synced = {row.id: row for row in self.rows(ModelVersion, ModelVersion.id, keys)}
        missing = keys - synced.keys()
        registered = set(synced) | (missing if known_registered else self._registered(missing))
        return {key: model_version_node(key, synced.get(key)) for key in registered}

    def _registered(self, keys: Collection[str]) -> set[str]:
        pairs = [key.rpartition("/") for key in keys]
        jobs = self.registering_jobs([(name, version) for name, _, version in pairs])
        return {f"{job.registered_model_name}/{job.registered_model_version}" for job in jobs}

    def registering_jobs(self, pairs: Sequence[tuple[str, str]]) -> list[TrainingJob]:
        return repository.jobs_that_registered(self.session, pairs)

    def endpoints(self, column: Any, values: Iterable[Any]) -> list[Node]:
        found = self.rows(ServingDeployment, column, values)
        return [endpoint_node(e) for e in found if e.environment in self.environments]

    # ------------------------------------------------------------- downstream

    def down(self, kind: str, keys: Sequence[str]) -> list[Hop]:
        match kind:
            case "dataset-version":
                jobs = self.rows(TrainingJob, TrainingJob.dataset_version_id, keys)
                return [
                    (f"dataset-version:{j.dataset_version_id}", job_node(j), "trained")
                    for j in jobs
                ]
            case "training-job":
                return self._job_outputs(keys)
            case "model-version":
                return self._model_version_outputs(keys)
            case _:
                return []

    def _job_outputs(self, job_ids: Sequence[str]) -> list[Hop]:
        hops: list[Hop] = []
        for p in self.rows(WorkflowPipeline, WorkflowPipeline.job_id, job_ids):
            hops.append((f"training-job:{p.job_id}", pipeline_node(p), "ran"))
        for r in self.rows(ExperimentRun, ExperimentRun.job_id, job_ids):
            hops.append((f"training-job:{r.job_id}", run_node(r), "tracked"))
        jobs = [
            j
            for j in self.rows(TrainingJob, TrainingJob.id, job_ids)
            if j.registered_model_name and j.registered_model_version
        ]
        pairs = [(j.registered_model_name, j.registered_model_version) for j in jobs]
        versions = self.model_version_nodes(pairs, known_registered=True)
        for j in jobs:
            node = versions[_registered(j)]
            hops.append((f"training-job:{j.id}", node, "registered"))
        return hops

    def _model_version_outputs(self, keys: Sequence[str]) -> list[Hop]:
        hops: list[Hop] = []
        for row in self.rows(ModelVersion, ModelVersion.id, keys):
            if row.commit:
                hops.append((f"model-version:{row.id}", commit_node(row), "synced"))
        jobs = [j for j in self.registering_jobs(_pairs(keys)) if j.model_storage_uri]
        served_by: dict[str, list[str]] = {}
        for j in jobs:
            key = f"model-version:{_registered(j)}"
            served_by.setdefault(str(j.model_storage_uri), []).append(key)
        found = self.rows(ServingDeployment, ServingDeployment.storage_uri, served_by)
        for endpoint in found:
            if endpoint.environment in self.environments:
                for key in served_by[str(endpoint.storage_uri)]:
                    hops.append((key, endpoint_node(endpoint), "served"))
        return hops

    # --------------------------------------------------------------- upstream

    def up(self, kind: str, keys: Sequence[str]) -> list[Hop]:
        match kind:
            case "training-job":
                return self._trained_on(keys)
            case "pipeline":
                found = self.rows(WorkflowPipeline, WorkflowPipeline.workflow_name, keys)
                return self._jobs_of(
                    [(f"pipeline:{p.workflow_name}", p.job_id) for p in found], "ran"
                )
            case "experiment-run":
                found = self.rows(ExperimentRun, ExperimentRun.run_id, keys)
                return self._jobs_of(
                    [(f"experiment-run:{r.run_id}", r.job_id) for r in found], "tracked"
                )
            case "model-version":
                registering = self.registering_jobs(_pairs(keys))
                return [
                    (f"model-version:{_registered(j)}", job_node(j), "registered")
                    for j in registering
                ]
            case "values-commit":
                rows = self.rows(ModelVersion, ModelVersion.commit, keys)
                return [
                    (f"values-commit:{row.commit}", model_version_node(row.id, row), "synced")
                    for row in rows
                ]
            case "endpoint":
                return self._served(keys)
            case _:
                return []

    def _trained_on(self, job_ids: Sequence[str]) -> list[Hop]:
        jobs = [j for j in self.rows(TrainingJob, TrainingJob.id, job_ids) if j.dataset_version_id]
        pinned = self.rows(DatasetVersion, DatasetVersion.id, (j.dataset_version_id for j in jobs))
        versions = self.version_nodes(pinned)
        return [
            (f"training-job:{j.id}", versions[str(j.dataset_version_id)], "trained")
            for j in jobs
            if j.dataset_version_id in versions
        ]

    def _jobs_of(self, links: list[tuple[str, str | None]], relation: str) -> list[Hop]:
        jobs = {j.id: j for j in self.rows(TrainingJob, TrainingJob.id, (i for _, i in links if i))}
        return [(key, job_node(jobs[i]), relation) for key, i in links if i in jobs]

    def _served(self, endpoint_ids: Sequence[str]) -> list[Hop]:
        found = [
            e
            for e in self.rows(ServingDeployment, ServingDeployment.id, endpoint_ids)
            if e.storage_uri
        ]
        uris = {str(e.storage_uri) for e in found}
        jobs = [
            j
            for j in self.rows(TrainingJob, TrainingJob.model_storage_uri, uris)
            if j.registered_model_name and j.registered_model_version
        ]
        pairs = [(j.registered_model_name, j.registered_model_version) for j in jobs]
        versions = self.model_version_nodes(pairs, known_registered=True)
        hops: list[Hop] = []
        for e in found:
            for j in jobs:
                if j.model_storage_uri == e.storage_uri:
                    hops.append((f"endpoint:{e.id}", versions[_registered(j)], "served"))
        return hops


def _pairs(keys: Iterable[str]) -> list[tuple[str, str]]:
    """``name/version`` keys as ``(name, version)``."""
    return [(name, version) for name, _, version in (key.rpartition("/") for key in keys)]


def _registered(job: TrainingJob) -> str:
    return f"{job.registered_model_name}/{job.registered_model_version}"
