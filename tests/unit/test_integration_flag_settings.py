"""How each service's settings follow its integration flag (``with_integration_flag``): the
switch is applied to the configured settings, so off and on again returns to exactly them."""

from __future__ import annotations

import pytest

from llmops_serving.config import BackendKind as ServingBackend
from llmops_serving.config import ServingSettings
from llmops_tracking.config import TrackingSettings
from llmops_versioning.config import VersioningSettings
from llmops_workflow.config import BackendKind as WorkflowBackend
from llmops_workflow.config import WorkflowSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("configured", "enabled", "expected"),
    [
        ((True, ServingBackend.KSERVE), False, ServingBackend.DEPLOYMENT),
        ((True, ServingBackend.KSERVE), True, ServingBackend.KSERVE),
        ((False, ServingBackend.DEPLOYMENT), True, ServingBackend.KSERVE),
        ((True, ServingBackend.DEPLOYMENT), True, ServingBackend.DEPLOYMENT),  # as configured
        ((True, ServingBackend.MANIFESTS), False, ServingBackend.MANIFESTS),
    ],
)
def test_the_serving_backend_follows_the_flag(
    configured: tuple[bool, ServingBackend], enabled: bool, expected: ServingBackend
) -> None:
    settings = ServingSettings(
        serving_framework_enabled=configured[0], serving_backend=configured[1]
    )
    switched = settings.with_integration_flag(enabled, "kserve")
    assert (switched.serving_framework_enabled, switched.serving_backend) == (enabled, expected)
    assert switched.integration_flag() == (enabled, "kserve")


def test_the_workflow_backend_follows_the_flag() -> None:
    argo = WorkflowSettings(workflow_orchestration_enabled=True, workflow_backend="argo")
    off = argo.with_integration_flag(False, "argo_workflows")
    assert (off.workflow_backend, off.render_format.value) == (WorkflowBackend.JOB, "jobs")
    assert argo.with_integration_flag(True, "argo_workflows").workflow_backend is (
        WorkflowBackend.ARGO
    )


def test_a_combination_the_settings_refuse_is_an_error() -> None:
    settings = WorkflowSettings(
        workflow_orchestration_enabled=False, workflow_backend="job", argo_submit_via="argo_server"
    )
    with pytest.raises(ValueError, match="ARGO_SUBMIT_VIA=argo_server needs ARGO_SERVER_URL"):
        settings.with_integration_flag(True, "argo_workflows")


def test_everything_else_is_kept_secrets_included() -> None:
    settings = TrackingSettings(
        redis_url="redis://user:pw@redis:6379/0", mlflow_tracking_uri="http://mlflow:5000"
    )
    off = settings.with_integration_flag(False, "mlflow")
    assert off.experiment_tracking_enabled is False
    assert off.redis_url is not None
    assert off.redis_url.get_secret_value() == "redis://user:pw@redis:6379/0"
    assert off.mlflow_tracking_uri == "http://mlflow:5000"
    versioning = VersioningSettings(data_versioning_enabled=False)
    assert versioning.with_integration_flag(True, "dvc").integration_flag() == (True, "dvc")
