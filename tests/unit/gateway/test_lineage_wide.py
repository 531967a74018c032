"""A wide lineage on SQLite: a dataset version that trained 1,200 jobs is walked in one query
per relation per hop. Review finding (the benchmark's first run): an ``OR`` per registered
model version exceeded SQLite's expression depth at a thousand."""

from __future__ import annotations

import uuid

import pytest

from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    ModelVersion,
    TrainingJob,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.lineage import lineage

pytestmark = pytest.mark.unit

JOBS = 1_200


def test_a_version_that_trained_a_thousand_jobs_is_walked(sessions: SessionFactory) -> None:
    now = utcnow()
    version_id = str(uuid.uuid4())
    rows: list[object] = [
        CatalogDataset(id="d", name="wide", type="sft_pair", created_at=now),
        DatasetVersion(
            id=version_id,
            dataset_id="d",
            version="v1.0.0",
            status="Succeeded",
            seq=1,
            created_at=now,
            updated_at=now,
        ),
    ]
    for n in range(JOBS):
        rows.append(TrainingJob(id=f"job-{n}", spec={}, status="Succeeded", status_seq=1,
                                dataset_version_id=version_id, registered_model_name="m",
                                registered_model_version=str(n), created_at=now))  # fmt: skip
        if n % 2:
            rows.append(ModelVersion(id=f"m/{n}", name="m", version=str(n), status="Succeeded",
                                     seq=1, commit=f"{n:040x}", created_at=now,
                                     updated_at=now))  # fmt: skip
    with sessions.begin() as session:
        session.add_all(rows)
    graph = lineage(sessions, "dataset-version", version_id, direction="down", depth=5,
                    environments=["dev"])  # fmt: skip
    kinds = [node.kind for node in graph.nodes]
    assert kinds.count("training-job") == JOBS
    assert kinds.count("model-version") == JOBS  # synced or only registered
    assert kinds.count("values-commit") == JOBS // 2
    assert len(graph.edges) == JOBS + JOBS + JOBS // 2
