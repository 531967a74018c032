"""How long the gateway takes to answer a lineage query when the chain is wide: one dataset
version that trained ``--jobs`` jobs, each with its pipeline, run, registered model version and
values commit, and one endpoint serving one of the models.

Three queries, each the median of ``--repeats`` runs of ``llmops_gateway.domain.lineage``
against a migrated database (SQLite by default, ``--database-url`` for PostgreSQL):

* ``endpoint_up``: "which data trained what this endpoint serves?" (the issue's < 100 ms goal);
* ``dataset_version_down``: "what did this version lead to?", every job and model of the run;
* ``job_both``: one job's whole chain.

The raw ceiling of the same run is one ``SELECT`` of every job of the version (what the wide
query cannot avoid reading). Prints a table; ``--json PATH`` writes the figures; ``--smoke``
seeds 20 jobs (the test suite's run, so the script cannot rot).

    uv run python bench/lineage.py [--jobs 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from database import own_schema
from llmops_gateway.db.migrate import upgrade
from llmops_gateway.db.models import (
    CatalogDataset,
    DatasetVersion,
    ExperimentRun,
    ModelVersion,
    ServingDeployment,
    TrainingJob,
    WorkflowPipeline,
    utcnow,
)
from llmops_gateway.db.session import SessionFactory, build_engine, session_factory
from llmops_gateway.domain.lineage import lineage

ENVIRONMENTS = ("dev", "stg", "prod")


def seed(sessions: SessionFactory, jobs: int) -> dict[str, str]:
    """The wide chain; returns the ids the queries start from."""
    now = utcnow()
    dataset = CatalogDataset(id=str(uuid.uuid4()), name="bench-data", type="sft_pair",
                             storage_uri="s3://bench/data", created_at=now)  # fmt: skip
    version = DatasetVersion(id=str(uuid.uuid4()), dataset_id=dataset.id, version="v1.0.0",
                             status="Succeeded", seq=1, created_at=now, updated_at=now)  # fmt: skip
    rows: list[Any] = [dataset, version]
    job_ids = []
    for n in range(jobs):
        job_id = str(uuid.uuid4())
        job_ids.append(job_id)
        artifact = f"s3://bench/models/{n}"
        rows += [
            TrainingJob(id=job_id, spec={"output": {"artifact_name": "bench-model"}},
                        status="Succeeded", status_seq=1, dataset_version_id=version.id,
                        registered_model_name="bench-model", registered_model_version=str(n + 1),
                        model_run_id=f"run{n:028d}", model_storage_uri=artifact,
                        created_at=now, updated_at=now),
            WorkflowPipeline(id=str(uuid.uuid4()), workflow_name=f"train-{job_id}", job_id=job_id,
                             namespace="llm-ops-dev", status="Succeeded", seq=1,
                             created_at=now, updated_at=now),
            ExperimentRun(id=str(uuid.uuid4()), job_id=job_id, run_id=f"run{n:028d}",
                          backend="mlflow", status="Succeeded", params={}, tags={}, metrics={},
                          seq=1, created_at=now, updated_at=now),
            ModelVersion(id=f"bench-model/{n + 1}", name="bench-model", version=str(n + 1),
                         status="Succeeded", seq=1, commit=f"{n:040x}", path=f"values/{n}.yaml",
                         created_at=now, updated_at=now),
        ]  # fmt: skip
    served = jobs // 2
    endpoint = ServingDeployment(
        id=str(uuid.uuid4()), environment="dev", route="/bench", endpoint_name="bench",
        model_id="m", model_ref="bench-model", spec={}, status="Ready",
        storage_uri=f"s3://bench/models/{served}", created_at=now, updated_at=now,
    )  # fmt: skip
    rows.append(endpoint)
    with sessions.begin() as session:
        session.add_all(rows)
    return {"version": version.id, "job": job_ids[served], "endpoint": endpoint.id}


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: statement caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def measure(url: str, jobs: int, repeats: int) -> dict[str, Any]:
    engine = build_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    ids = seed(sessions, jobs)

    def walk(kind: Any, entity_id: str, direction: Any) -> Callable[[], object]:
        return lambda: lineage(sessions, kind, entity_id, direction=direction, depth=10,
                               environments=ENVIRONMENTS)  # fmt: skip

    def ceiling() -> object:
        with sessions() as session:
            query = select(TrainingJob).where(TrainingJob.dataset_version_id == ids["version"])
            return session.scalars(query).all()

    wide = lineage(sessions, "dataset-version", ids["version"], direction="down", depth=10,
                   environments=ENVIRONMENTS)  # fmt: skip
    figures = {
        "jobs": jobs,
        "nodes_down_from_the_version": len(wide.nodes),
        "endpoint_up_ms": median_ms(walk("endpoint", ids["endpoint"], "up"), repeats),
        "dataset_version_down_ms": median_ms(
            walk("dataset-version", ids["version"], "down"), repeats
        ),
        "job_both_ms": median_ms(walk("training-job", ids["job"], "both"), repeats),
        "ceiling_select_jobs_ms": median_ms(ceiling, repeats),
    }
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--smoke", action="store_true", help="20 jobs, 2 repeats (the suite)")
    args = parser.parse_args()
    jobs, repeats = (20, 2) if args.smoke else (args.jobs, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/lineage.db"
        with own_schema(url) as isolated:
            figures = measure(isolated, jobs, repeats)
    figures["database"] = url.split(":", 1)[0]
    figures["machine"] = f"{platform.node()} {platform.machine()} {platform.python_version()}"
    figures["date"] = datetime.now(UTC).date().isoformat()
    nodes = figures["nodes_down_from_the_version"]
    print(
        f"lineage over {jobs} jobs of one dataset version ({figures['database']}; median of "
        f"{repeats}; {nodes} nodes down from the version)"
    )
    print(f"{'query':<26}{'ms':>10}")
    for name in ("endpoint_up", "job_both", "dataset_version_down", "ceiling_select_jobs"):
        print(f"{name:<26}{figures[name + '_ms']:>10}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
