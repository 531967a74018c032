"""End to end with the integrations off: no MLflow (EXPERIMENT_TRACKING_ENABLED=false), the
built-in dataset versions (DATA_VERSIONING_ENABLED=false) and unverified catalog imports
(MODEL_REGISTRY_ENABLED=false); the same API answers."""

from __future__ import annotations

import pytest

from support.stack import (
    BASE_MODEL,
    ensure_dataset_version,
    eventually,
    example_body,
    local_stack,
)

pytestmark = pytest.mark.e2e


def test_runs_are_recorded_by_the_gateway_alone(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("builtin")
    with (
        local_stack(
            redis_url,
            data_dir,
            EXPERIMENT_TRACKING_ENABLED="false",
            DATA_VERSIONING_ENABLED="false",
            MODEL_REGISTRY_ENABLED="false",
            WORKFLOW_BACKEND="manifests",  # the run record is the subject, not training
        ) as stack,
        stack.client() as client,
    ):
        version = ensure_dataset_version(client, data_dir)
        assert (version["backend"], version["fileCount"]) == ("builtin", 2)
        imported = client.import_model(
            {"registryType": "huggingface", "registryModelId": "org/unreachable",
             "family": "llama", "maxPositionEmbeddings": 4096}
        )  # fmt: skip
        assert (imported["status"], imported["verified"]) == ("Ready", False)
        client.add_model(BASE_MODEL)
        job = client.submit_training_job(example_body())
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")
        assert run["backend"] == "builtin"
        assert run["runId"] == f"builtin-{job['id']}"
        assert run["trackingUrl"] is None
        assert run["params"]["hyperparams.lr"] == "0.0001"

        client.cancel_training_job(job["id"])
        cancelled = eventually(
            lambda: (r := client.experiment_run(job["id"])) and r["status"] == "Cancelled" and r,
            timeout_s=30,
            what="the cancelled run",
        )
        assert cancelled["params"]["hyperparams.lr"] == "0.0001"  # kept across the cancel
    assert "mlflow |" not in stack.log_text()  # no MLflow server was started
