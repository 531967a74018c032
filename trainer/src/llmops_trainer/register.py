"""register: put the trained model under the job's MLflow run and create its model version.

``python -m llmops_trainer.register --job-type=SFT --model-family=llama
[--base-model-ref=...] --model-uri=<model> --eval-uri=<eval> --model-name=<artifact_name>
--save-format=hf [--dataset-name=... --dataset-version=...]``

The order leaves no half-registered version behind:

1. the model directory is uploaded to the run's artifacts under ``model`` (the path the
   github-sync service's Helm values point at: ``/mlflow/<experiment>/<run>/artifacts/model``)
   and evaluate's metrics under ``eval``;
2. the registered model is created when missing (a concurrent creation is fine);
3. last, ``create_model_version(name, source=<run artifact_uri>/model, run_id, tags)``;
   ``mlflow.register_model`` is not used: on a plain artifact path it fails in MLflow 3.

A retried register that finds a version of this name from this run tagged with this job id
reuses it. Then the run is tagged ``llmops.model_version=<name>/<version>`` and ended
FINISHED, and ``$LLMOPS_OUTPUTS_DIR/model-version.json`` (also printed) tells the pipeline
``{"name", "version", "run_id", "source", "storage_uri"}``. Without MLflow configured nothing
is registered: ``version`` and ``run_id`` are null and ``storage_uri`` is ``--model-uri``.
No torch here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from llmops_trainer import storage
from llmops_trainer.cli import (
    BaseModelRefOption,
    BaseModelUriOption,
    Common,
    JobTypeOption,
    ModelFamilyOption,
    ModelUriOption,
    SaveFormatOption,
    check_common,
    new_app,
    run_stage,
)
from llmops_trainer.env import StageEnv
from llmops_trainer.errors import Refused
from llmops_trainer.evaluate import METRICS_FILE
from llmops_trainer.locations import check_trained, trained_model
from llmops_trainer.tracking import JOB_ID_TAG, MODEL_VERSION_TAG, RunTracker

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

STAGE = "register"
OUTPUT_FILE: Final = "model-version.json"
MODEL_ARTIFACT: Final = "model"
EVAL_ARTIFACT: Final = "eval"
READY_TIMEOUT_S: Final = 120.0
_log = logging.getLogger("llmops_trainer.register")  # not __main__ under -m
app = new_app("Register the trained model as an MLflow model version.")


@app.command()
def register(
    job_type: JobTypeOption,
    model_family: ModelFamilyOption,
    model_uri: ModelUriOption,
    eval_uri: Annotated[str, typer.Option("--eval-uri", help="evaluate's output.")],
    model_name: Annotated[str, typer.Option("--model-name", help="Registered model name.")],
    save_format: SaveFormatOption,
    base_model_ref: BaseModelRefOption = None,
    base_model_uri: BaseModelUriOption = None,
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", help="For the version's tags.")
    ] = None,
    dataset_version: Annotated[
        str | None, typer.Option("--dataset-version", help="For the version's tags.")
    ] = None,
) -> None:
    """Register the model; write and print model-version.json."""
    common = Common(job_type, model_family, base_model_ref, base_model_uri)
    check_common(common)
    if "'" in model_name or not model_name.strip():
        raise Refused(f"--model-name {model_name!r} is not a usable registered model name")
    env = StageEnv.from_environ()
    if env.tracking_uri is None:
        check_trained(model_uri)
        _log.info("MLFLOW_TRACKING_URI is not set: no model version was registered")
        _publish(env, model_name, None, None, None, _as_location(model_uri))
        return
    tracker = RunTracker.from_env(env, stage=STAGE)
    if tracker is None:
        raise Refused("register needs MLFLOW_RUN_ID (the job's run) when MLflow is configured")
    tags = {
        JOB_ID_TAG: env.job_id,
        "llmops.dataset": f"{dataset_name}@{dataset_version}" if dataset_name else None,
        "llmops.base_model": base_model_ref,
        "llmops.job_type": job_type.value,
        "llmops.save_format": save_format.value,
    }
    version = _register(
        tracker, model_uri, eval_uri, model_name, {k: v for k, v in tags.items() if v}, env
    )
    _close_run(tracker, f"{model_name}/{version.version}")
    source = str(version.source)
    _publish(
        env,
        model_name,
        str(version.version),
        tracker.run_id,
        source,
        storage_uri(source, env.artifacts_destination),
    )


def _register(
    tracker: RunTracker,
    model_uri: str,
    eval_uri: str,
    name: str,
    tags: dict[str, str],
    env: StageEnv,
) -> ModelVersion:
    client = tracker.client
    existing = _existing_version(client, name, tracker.run_id, env.job_id)
    if existing is not None:
        _log.info("found model version %s/%s of this job", name, existing.version)
        try:
            return _ready_or_discarded(client, existing)
        except RuntimeError as exc:  # a retry after a failed registration: register anew
            _log.warning("%s; registering again", exc)
    model = trained_model(model_uri)
    assert model.local_dir is not None
    metrics = storage.join(eval_uri, METRICS_FILE)
    if not storage.exists(metrics):
        raise Refused(f"--eval-uri {eval_uri} holds no {METRICS_FILE}: run evaluate first")
    _log.info("uploading %s to run %s under %s/", model_uri, tracker.run_id, MODEL_ARTIFACT)
    client.log_artifacts(tracker.run_id, str(model.local_dir), MODEL_ARTIFACT)
    with tempfile.TemporaryDirectory(prefix="llmops-eval-") as scratch:
        local = Path(scratch) / METRICS_FILE
        local.write_bytes(storage.read_bytes(metrics))
        client.log_artifact(tracker.run_id, str(local), EVAL_ARTIFACT)
    _ensure_registered_model(client, name)
    run = client.get_run(tracker.run_id)
    source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
    version = client.create_model_version(name, source=source, run_id=tracker.run_id, tags=tags)
    _log.info("created model version %s/%s from %s", name, version.version, source)
    return _ready_or_discarded(client, version)


def _existing_version(
    client: MlflowClient, name: str, run_id: str, job_id: str | None
) -> ModelVersion | None:
    """A version of ``name`` this job's run already created (a retried register)."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    for version in found:
        if job_id is None or version.tags.get(JOB_ID_TAG) == job_id:
            return version
    return None


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
        _log.info("created registered model %s", name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _ready_or_discarded(client: MlflowClient, version: ModelVersion) -> ModelVersion:
    """The version once READY; one that failed or never became ready is deleted (never left
    half-registered for a deployment to find) and a RuntimeError raised."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
        time.sleep(1.0)
        version = client.get_model_version(version.name, version.version)
    if version.status == "READY":
        return version
    why = (
        f"model version {version.name}/{version.version} is {version.status}: "
        f"{version.status_message or 'no message'}"
    )
    try:
        client.delete_model_version(version.name, version.version)
    except Exception as exc:  # noqa: BLE001 - said below; the registration failed either way
        why += f" (and deleting it failed: {exc})"
    raise RuntimeError(why)


def _close_run(tracker: RunTracker, model_version: str) -> None:
    """Tag the run with its model version and end it FINISHED. The version is registered and
    READY at this point: an MLflow hiccup here must not fail the stage (and so the job)
    around a good model, so it is logged; the run then stays RUNNING, which the log says."""
    try:
        tracker.set_tags({MODEL_VERSION_TAG: model_version})
        tracker.finish()
    except Exception:  # noqa: BLE001 - logged with its traceback; the model is registered
        _log.exception(
            "model version %s is registered, but the run %s could not be tagged and ended",
            model_version,
            tracker.run_id,
        )


def storage_uri(source: str, artifacts_destination: str | None) -> str:
    """Where a model server reads the version's files: ``mlflow-artifacts:/<path>`` (the
    server's proxied artifact store) becomes ``<MLFLOW_ARTIFACTS_DESTINATION>/<path>``; any
    other source, or no destination configured, stays as it is."""
    if not artifacts_destination or not source.startswith("mlflow-artifacts:"):
        return source
    path = source.removeprefix("mlflow-artifacts:")
    if path.startswith("//"):  # mlflow-artifacts://host:port/<path>
        path = "/" + path[2:].partition("/")[2]
    return _as_location(storage.join(artifacts_destination, path.lstrip("/")))


def _as_location(uri: str) -> str:
    """A URI as it is; a local path made absolute, and a ``file://`` URI when it holds
    whitespace (a project under "/Users/Jane Doe/"): locations travel in events whose URIs
    allow none."""
    if "://" in uri:
        return uri
    path = Path(os.path.abspath(uri))
    return path.as_uri() if any(c.isspace() for c in str(path)) else str(path)


def _publish(
    env: StageEnv,
    name: str,
    version: str | None,
    run_id: str | None,
    source: str | None,
    location: str,
) -> None:
    record: dict[str, Any] = {
        "name": name,
        "version": version,
        "run_id": run_id,
        "source": source,
        "storage_uri": location,
    }
    env.outputs_dir.mkdir(parents=True, exist_ok=True)
    target = env.outputs_dir / OUTPUT_FILE
    partial = target.with_name(f".{OUTPUT_FILE}.partial")
    partial.write_text(json.dumps(record, sort_keys=True) + "\n")
    os.replace(partial, target)
    print(json.dumps(record, sort_keys=True), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; its exit code."""
    return run_stage(STAGE, app, argv)


if __name__ == "__main__":
    sys.exit(main())
