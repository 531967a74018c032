"""The built-in backend (tracking disabled) and the settings that choose a backend."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from llmops_shared.events import ExperimentRunStatusUpdated, decode_event, encode_event
from llmops_tracking.adapters.builtin import BuiltinTracking
from llmops_tracking.app import build_backend, build_handler, build_locks
from llmops_tracking.config import TrackingSettings

from integration.tracking.helpers import (
    cancelled,
    new_job_id,
    received,
    submitted,
    unreachable_uri,
)
from support.streams import details_of

pytestmark = pytest.mark.integration

BUILTIN_NOTE = (
    "experiment tracking is disabled (EXPERIMENT_TRACKING_ENABLED=false): "
    "the run record lives in the gateway DB only"
)


def settings(**values: object) -> TrackingSettings:
    return TrackingSettings(_env_file=None, **values)  # type: ignore[arg-type]


def status_of(outputs: object) -> ExperimentRunStatusUpdated:
    assert isinstance(outputs, list)
    [envelope] = outputs
    return decode_event(encode_event(envelope)).payload_as(ExperimentRunStatusUpdated)


async def test_disabled_tracking_reports_builtin_runs_without_calling_mlflow(
    redis: aioredis.Redis,
) -> None:
    # An unreachable MLflow proves it: any MLflow call would raise TrackingUnavailable.
    config = settings(experiment_tracking_enabled=False, mlflow_tracking_uri=unreachable_uri())
    backend = build_backend(config)
    assert isinstance(backend, BuiltinTracking)
    handler = build_handler(config, backend, build_locks(config, redis))
    job_id = new_job_id()

    running = status_of(await handler(received(submitted(job_id, model_id="m-1"))))
    stopped = status_of(await handler(received(cancelled(job_id, "no longer needed"))))

    assert running.entity_id == f"builtin-{job_id}"
    assert running.phase == "Running"
    assert running.reason == BUILTIN_NOTE
    assert details_of(running)["backend"] == "builtin"
    assert details_of(running)["experiment_id"] == "builtin"
    assert details_of(running)["experiment_name"] == "llm-ops/dev/SFT"
    assert details_of(running)["run_url"] is None
    assert details_of(running)["job_id"] == job_id
    params = details_of(running)["params"]
    assert isinstance(params, dict)
    assert params["hyperparams.lr"] == "0.0001"
    assert params["dataset_ref.name"] == "enterprise-instruction"
    tags = details_of(running)["tags"]
    assert isinstance(tags, dict)
    assert tags["llmops.job_id"] == job_id
    assert tags["llmops.model_id"] == "m-1"

    assert stopped.entity_id == f"builtin-{job_id}"
    assert stopped.phase == "Cancelled"
    assert stopped.reason == "no longer needed"
    assert details_of(stopped) == {
        "job_id": job_id,
        "experiment_id": "builtin",
        "experiment_name": None,
        "run_url": None,
        "backend": "builtin",
        "params": {},
        "tags": {"llmops.job_id": job_id},
    }


def test_defaults() -> None:
    config = settings()
    assert config.service_name == "tracking"
    assert config.health_port == 8081
    assert config.experiment_tracking_enabled is True
    assert config.experiment_tracking_system == "mlflow"
    assert config.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert config.mlflow_ui_url is None
    assert config.experiment_name_template == "llm-ops/{environment}/{job_type}"
    assert config.mlflow_http_request_max_retries == 0


def test_settings_come_from_the_seed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERIMENT_TRACKING_ENABLED", "false")
    monkeypatch.setenv("EXPERIMENT_TRACKING_SYSTEM", "MLflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.mlflow.svc:5000/")
    monkeypatch.setenv("MLFLOW_UI_URL", "")
    monkeypatch.setenv("EXPERIMENT_NAME_TEMPLATE", "{model_family}/{job_type}")

    config = settings()

    assert config.experiment_tracking_enabled is False
    assert config.experiment_tracking_system == "mlflow"
    assert config.mlflow_tracking_uri == "http://mlflow.mlflow.svc:5000"
    assert config.mlflow_ui_url is None
    assert config.experiment_name_template == "{model_family}/{job_type}"


def test_an_unknown_tracking_system_is_refused() -> None:
    with pytest.raises(ValueError, match="EXPERIMENT_TRACKING_SYSTEM='wandb' is not supported"):
        settings(experiment_tracking_system="wandb")


@pytest.mark.parametrize("template", ["llm-ops/{env}/{job_type}", "llm-ops/{}", "{0}", " "])
def test_a_bad_experiment_name_template_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="EXPERIMENT_NAME_TEMPLATE"):
        settings(experiment_name_template=template)
