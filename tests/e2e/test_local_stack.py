"""End to end: `llmops up` runs the real processes; what is sent over REST reaches the real
systems (an MLflow run, a DVC-versioned dataset, a model imported from a Hub).

Real Redis (the test session's, under a private stream namespace), a real MLflow server on
SQLite started by the stack, the gateway and every worker as separate processes; the Hub is the
in-repo test double (support/hf_hub_server.py) the registry worker reaches over HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from llmops_cli.client import GatewayError
from llmops_shared.events import DeadLetterEntry, Stream
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from support.argo_schema import schema_errors as argo_schema_errors
from support.hf_hub_server import MINILM_REPO, HubServer
from support.kserve_crd import schema_errors
from support.stack import (
    BASE_MODEL,
    DATASET_NAME,
    RunningStack,
    ensure_dataset_version,
    eventually,
    example_body,
    local_stack,
    write_dataset_files,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_minilm()
        yield server


@pytest.fixture(scope="module")
def stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, hub: HubServer
) -> Iterator[RunningStack]:
    # GitOps mode for the pipelines: this module checks the rendered Workflow files (the
    # default local backend, which trains, is test_training_loop.py's)
    with local_stack(
        redis_url,
        tmp_path_factory.mktemp("stack"),
        HF_ENDPOINT=hub.url,
        WORKFLOW_BACKEND="manifests",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def base_model(stack: RunningStack) -> dict[str, Any]:
    """The example job's base model and dataset version, in the catalog."""
    with stack.client() as client:
        ensure_dataset_version(client, stack.data_dir)
        return client.add_model(BASE_MODEL)


@pytest.mark.usefixtures("base_model")
def test_a_submitted_job_becomes_an_mlflow_run_with_flattened_params(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        assert job["status"] == "Pending"
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")

    assert run["backend"] == "mlflow"
    assert run["trackingUrl"].startswith(stack.mlflow_url)
    mlflow_run = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"])
    assert mlflow_run.data.params["hyperparams.lr"] == "0.0001"
    assert mlflow_run.data.params["hyperparams.max_seq_len"] == "4096"
    assert mlflow_run.data.params["dataset_ref.name"] == "enterprise-instruction"
    assert mlflow_run.data.tags["llmops.job_id"] == job["id"]
    assert run["params"]["method"] == "lora"


@pytest.mark.usefixtures("base_model")
def test_cancel_kills_the_run(stack: RunningStack) -> None:
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        run = eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the run")
        client.cancel_training_job(job["id"])

        def killed() -> bool:
            status = MlflowClient(tracking_uri=stack.mlflow_url).get_run(run["runId"]).info.status
            return status == "KILLED"

        eventually(killed, timeout_s=30, what="the MLflow run KILLED")
        reported = eventually(
            lambda: (r := client.experiment_run(job["id"])) and r["status"] == "Cancelled" and r,
            timeout_s=30,
            what="the cancelled status in the gateway",
        )
    assert reported["runId"] == run["runId"]


@pytest.mark.usefixtures("base_model")
def test_a_too_long_sequence_is_refused_with_the_seed_message(stack: RunningStack) -> None:
    body = example_body()
    body["trainJobSpec"]["hyperparams"]["max_seq_len"] = 16384
    with stack.client() as client, pytest.raises(GatewayError) as refused:
        client.submit_training_job(body)
    assert refused.value.status_code == 422
    assert any(
        "SFT max_seq_len must be <= base_model.max_position_embeddings" in line
        for line in refused.value.messages()
    )


@pytest.mark.usefixtures("base_model")
def test_a_bad_event_on_the_stream_is_dead_lettered_and_tracking_keeps_serving(
    stack: RunningStack,
) -> None:
    stream = f"{stack.namespace}{Stream.TRAINING}"
    stack.redis.xadd(stream, {"event": '{"specversion": "1.0", "type": "nope"}'})

    def dead_letter() -> DeadLetterEntry | None:
        for _, fields in stack.redis.xrange(f"{stream}.dlq"):
            letter = DeadLetterEntry.from_fields(fields)
            if letter.group == "tracking":
                return letter
        return None

    letter = eventually(dead_letter, timeout_s=30, what="a dead letter from tracking")
    assert "invalid envelope" in letter.reason
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        eventually(lambda: client.experiment_run(job["id"]), timeout_s=30, what="the next run")


def test_an_endpoint_becomes_a_valid_manifest_is_promoted_and_deleted(
    stack: RunningStack,
) -> None:
    """Serving with the local default backend: validated YAML in the stack's manifests dir.

    The artifact is one no job of this module produces (their jobs never run here, and the
    artifact of a job that has not registered its model cannot be deployed)."""
    with stack.client() as client:
        model = client.add_model(
            {"name": "llama-3-8b-sft-manual", "family": "llama", "max_position_embeddings": 8192}
        )
        endpoint = client.create_endpoint(
            {
                "modelId": model["id"],
                "route": "/test-model",
                "environment": "dev",
                "deploymentSpec": {**SEED_DEPLOYMENT_SPEC, "model_ref": "llama-3-8b-sft-manual"},
            }
        )
        deployment = eventually(
            lambda: (d := client.deployment(endpoint["id"])) and d["status"] == "Ready" and d,
            timeout_s=30,
            what="the deployment reported Ready",
        )
        assert deployment["backend"] == "manifests"
        path = stack.data_dir / "manifests" / "llm-ops-dev" / f"{endpoint['name']}.yaml"
        manifest = yaml.safe_load(path.read_text())
        assert manifest == deployment["manifest"]
        assert manifest["kind"] == "InferenceService"
        assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 10
        assert schema_errors(manifest) == []

        client.promote_endpoint(endpoint["id"])
        eventually(
            lambda: (
                "canaryTrafficPercent" not in yaml.safe_load(path.read_text())["spec"]["predictor"]
            ),
            timeout_s=30,
            what="the canary promoted in the manifest",
        )

        client.delete_endpoint(endpoint["id"])
        eventually(
            lambda: client.endpoint(endpoint["id"]) is None,
            timeout_s=30,
            what="the endpoint removed after the worker reported Deleted",
        )
        assert not path.exists()


@pytest.mark.usefixtures("base_model")
def test_a_job_becomes_a_valid_argo_workflow_manifest_shown_as_its_pipeline(
    stack: RunningStack,
) -> None:
    """Workflow in GitOps mode (manifests): the Workflow YAML, and the pipeline in the API."""
    with stack.client() as client:
        job = client.submit_training_job(example_body())
        pipeline_url = f"{stack.gateway_url}/llm-ops/v1/workflows/pipelines/train-{job['id']}"

        def reported() -> dict[str, Any] | None:
            response = httpx.get(
                pipeline_url, timeout=5, headers={"Authorization": f"Bearer {stack.api_key}"}
            )
            return response.json() if response.status_code == 200 else None

        pipeline = eventually(reported, timeout_s=30, what="the pipeline reported")
        assert pipeline["backend"] == "manifests"
        assert pipeline["jobId"] == job["id"]
        path = stack.data_dir / "workflows" / pipeline["namespace"] / f"train-{job['id']}.yaml"
        workflow = yaml.safe_load(path.read_text())
        assert workflow["kind"] == "Workflow"
        assert workflow == pipeline["manifest"]
        assert argo_schema_errors(workflow) == []
        assert client.training_job(job["id"])["pipeline"]["id"] == f"train-{job['id']}"


def test_an_imported_model_sets_the_limit_training_is_checked_against(
    stack: RunningStack,
) -> None:
    """Registry: the Hub's config.json decides the context length the gateway enforces."""
    with stack.client() as client:
        model = client.import_model({"registryType": "huggingface", "registryModelId": MINILM_REPO})

        def ready() -> dict[str, Any] | None:
            current = client.model(model["id"])
            assert current["status"] != "Failed", current["reason"]
            return current if current["status"] == "Ready" else None

        imported = eventually(ready, timeout_s=60, what="the import")
        assert (imported["family"], imported["maxPositionEmbeddings"]) == ("bert", 512)
        assert imported["verified"] is True
        [link] = client.registry_links(model["id"])
        assert link["resolvedRevision"] is not None

        body = example_body()
        spec = body["trainJobSpec"]
        spec.update(job_type="EMBEDDING", model_family="bert", base_model_ref=MINILM_REPO)
        spec["dataset_ref"]["type"] = "embedding_pair"
        spec["hyperparams"]["max_seq_len"] = 1024
        with pytest.raises(GatewayError) as refused:
            client.submit_training_job(body)
    assert refused.value.status_code == 422
    assert (
        "trainJobSpec.hyperparams.max_seq_len: EMBEDDING max_seq_len must be <= "
        "base_model.max_position_embeddings (1024 > 512)"
    ) in refused.value.messages()


@pytest.mark.usefixtures("base_model")
def test_a_new_dataset_version_diffs_and_restores_byte_for_byte(stack: RunningStack) -> None:
    """Versioning with DVC: change the data, version it again, diff, restore the first."""
    source = stack.data_dir / "datasets" / DATASET_NAME
    v1_files = {path.name: path.read_bytes() for path in source.iterdir()}
    with stack.client() as client:
        [dataset] = [d for d in client.datasets() if d["name"] == DATASET_NAME]
        [v1] = client.dataset_versions(dataset["id"])
        write_dataset_files(source, records=5)  # train.jsonl grows, valid.jsonl is unchanged
        (source / "test.jsonl").write_text('{"prompt": "q", "completion": "a"}\n')
        v2 = client.create_dataset_version(dataset["id"], "v1.1.0")
        eventually(
            lambda: client.dataset_version(dataset["id"], v2["id"])["status"] == "Succeeded",
            timeout_s=120,
            what="the second version",
        )
        changes = client.dataset_diff(dataset["id"], v2["id"])
        assert changes["baseVersionId"] == v1["id"]
        assert [c["path"] for c in changes["added"]] == ["test.jsonl"]
        assert [c["path"] for c in changes["modified"]] == ["train.jsonl"]
        assert (changes["deleted"], changes["summary"]["unchanged"]) == ([], 1)

        target = stack.data_dir / "restored-v1"
        restore = client.restore_dataset_version(dataset["id"], v1["id"], str(target))
        eventually(
            lambda: client.get(restore["statusUrl"])["status"] == "Succeeded",
            timeout_s=120,
            what="the restore",
        )
    assert {path.name: path.read_bytes() for path in target.iterdir()} == v1_files


@pytest.mark.usefixtures("base_model")
def test_a_flag_change_switches_the_running_versioning_worker(stack: RunningStack) -> None:
    """Operations: DATA_VERSIONING off for dev through the gateway; the versioning process
    (started by `llmops up` with DVC) switches to the built-in store by itself, and back."""

    def versioning() -> dict[str, Any]:
        with stack.client() as client:
            area: dict[str, Any] = client.integrations_health()["integrations"]["data_versioning"]
        return area

    def runs(backend: str) -> dict[str, Any] | None:
        area = versioning()
        return area if area["backend"] == backend and area["workersAlive"] == 1 else None

    with stack.client() as client:
        [dataset] = [d for d in client.datasets() if d["name"] == DATASET_NAME]
        off = client.set_integration_config("dev", "data_versioning", {"enabled": False})
        assert (off["changed"], off["source"]) == (True, "integration_configs")
        try:
            area = eventually(lambda: runs("builtin"), timeout_s=30, what="the builtin backend")
            assert area["configured"]["enabled"] is False
            assert area["workers"][0]["facts"]["config_source"] == "llmops.config"
            version = client.create_dataset_version(dataset["id"], "v1.2.0")
            done = eventually(
                lambda: (
                    (v := client.dataset_version(dataset["id"], version["id"]))["status"]
                    in {"Succeeded", "Failed"}
                    and v
                ),
                timeout_s=60,
                what="a version on the built-in store",
            )
            assert (done["status"], done["backend"]) == ("Succeeded", "builtin"), done
        finally:
            client.set_integration_config("dev", "data_versioning", {"enabled": True})
        eventually(lambda: runs("dvc"), timeout_s=30, what="DVC again")


def test_a_registered_model_version_becomes_helm_values_in_git(stack: RunningStack) -> None:
    """github-sync: MLflow's webhook -> tracking -> llmops.models -> a commit in the local
    bare repository, with the seed's structure."""
    client = MlflowClient(stack.mlflow_url)
    experiment = client.create_experiment(f"e2e-sync-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment)
    name = f"e2e-model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    bare = stack.data_dir / "github-sync" / "values.git"

    def committed() -> dict[str, Any] | None:
        shown = subprocess.run(
            ["git", "--git-dir", str(bare), "show", f"main:{run.info.run_id}.yaml"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return yaml.safe_load(shown.stdout) if shown.returncode == 0 else None

    values = eventually(committed, timeout_s=30, what="the values file in git")
    assert values["global"]["runid"] == run.info.run_id
    assert values["global"]["experimentId"] == experiment
    assert (values["global"]["modelName"], str(values["global"]["modelVersion"])) == (name, "1")
    assert values["vllm"]["vllm"]["model"] == (
        "/mlflow/{{ .Values.global.experimentId }}/{{ .Values.global.runid }}/artifacts/model"
    )


def live_workers(stack: RunningStack, area: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    report = httpx.get(
        f"{stack.gateway_url}/llm-ops/v1/health/integrations", headers=headers, timeout=10
    ).json()
    workers = report["integrations"][area]["workers"] or []
    return [worker for worker in workers if worker["alive"]]


def test_a_killed_worker_is_restarted_and_the_stack_goes_on(stack: RunningStack) -> None:
    """kill -9 of a worker: `llmops up` says so, starts it again, and it serves again."""
    (old,) = eventually(lambda: live_workers(stack, "data_versioning"), what="a versioning worker")
    os.kill(old["pid"], signal.SIGKILL)
    eventually(lambda: "versioning restarted" in stack.log_text(), what="the restart")
    assert "versioning exited with code -9; restarting it" in stack.log_text()
    assert stack.process.poll() is None  # the stack did not stop

    def new_worker() -> list[dict[str, Any]]:
        return [w for w in live_workers(stack, "data_versioning") if w["pid"] != old["pid"]]

    eventually(new_worker, timeout_s=90, what="the restarted worker's heartbeat")


def test_ctrl_c_stops_every_process(stack: RunningStack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    log = stack.log_text()
    assert "stack stopped" in log
    services = ("gateway", "tracking", "serving", "workflow", "registry", "versioning")
    for name in (*services, "github-sync", "mlflow"):
        assert f"{name} |" in log, f"no output from {name}"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.gateway_url}/healthz", timeout=2)
