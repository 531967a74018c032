"""What the local backend reads out of a rendered pipeline, and how Argo reports what
register created (both pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops_shared.events import Phase
from llmops_workflow.config import BackendKind, WorkflowSettings
from llmops_workflow.local.plan import (
    RetryPolicy,
    fill_inputs,
    local_plan,
    parse_duration,
    task_output,
)
from llmops_workflow.ports import WorkflowRejected
from llmops_workflow.render.jobs import render_jobs
from llmops_workflow.render.status import observe_workflow
from llmops_workflow.render.workflow import render_workflow

from unit.workflow.cases import GPU, JOB_ID, SPECS, request

pytestmark = pytest.mark.unit

RUN_ID_FROM_PREPARE = "{{tasks.prepare-data.outputs.parameters.mlflow-run-id}}"


def test_a_workflow_becomes_four_ordered_stages_with_their_commands_and_retry_policy() -> None:
    plan = local_plan(render_workflow(request(), GPU))
    assert plan.name == f"train-{JOB_ID}"
    assert plan.job_id == JOB_ID
    assert [s.name for s in plan.stages] == ["prepare-data", "train", "evaluate", "register"]
    prepare, train, evaluate, register = plan.stages
    assert prepare.argv[:2] == ["python", "-c"]  # the run-resolving wrapper, then the stage
    assert prepare.argv[3:6] == ["python", "-m", "llmops_trainer.prepare_data"]
    assert prepare.outputs == {"mlflow-run-id": "mlflow-run-id"}
    assert train.argv[0] == "torchrun"
    assert train.depends == ("prepare-data",)
    assert train.inputs == {"mlflow-run-id": RUN_ID_FROM_PREPARE}
    assert train.env["MLFLOW_RUN_ID"] == "{{inputs.parameters.mlflow-run-id}}"
    assert evaluate.depends == ("train",)
    assert register.outputs == {"model-version": "model-version.json"}
    assert train.retry == RetryPolicy(limit=3, backoff_s=30.0, factor=2.0, cap_s=600.0)


def test_the_built_in_jobs_become_the_same_stages_each_resolving_the_run_itself() -> None:
    plan = local_plan(render_jobs(request(), GPU))
    assert plan.name == f"train-{JOB_ID}"
    assert [s.name for s in plan.stages] == ["prepare-data", "train", "evaluate", "register"]
    assert all(s.argv[:2] == ["python", "-c"] for s in plan.stages)
    assert [s.depends for s in plan.stages] == [(), ("prepare-data",), ("train",), ("evaluate",)]
    assert plan.stages[1].retry.limit == 3


def test_multi_node_training_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(WorkflowRejected, match=r"runs on 2 nodes.*WORKFLOW_BACKEND=argo"):
        local_plan(render_workflow(request(SPECS["multi_node"]), GPU))


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({"kind": "Deployment", "metadata": {}}, "not 'Deployment'"),
        ({"kind": "List", "items": []}, "the Job list is empty"),
        (
            {"kind": "Workflow", "metadata": {"name": "w", "namespace": "n"}, "spec": {}},
            "the entrypoint is not a DAG",
        ),
    ],
)
def test_shapes_it_cannot_run_are_refused(manifest: dict[str, Any], why: str) -> None:
    with pytest.raises(WorkflowRejected, match=why):
        local_plan(manifest)


def test_a_dag_with_a_cycle_or_an_unknown_dependency_is_refused() -> None:
    workflow = render_workflow(request(), GPU)
    tasks = workflow["spec"]["templates"][0]["dag"]["tasks"]
    tasks[0]["depends"] = "register"
    with pytest.raises(WorkflowRejected, match="a cycle"):
        local_plan(workflow)
    tasks[0]["depends"] = "nowhere"
    with pytest.raises(WorkflowRejected, match=r"unknown tasks \['nowhere'\]"):
        local_plan(workflow)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h30m", 5400), ("250ms", 0.25), ("15", 15), (2, 2)],
)
def test_argo_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(WorkflowRejected, match="not a duration"):
        parse_duration("soon")


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(limit=5, backoff_s=30, factor=2, cap_s=100)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_parameters_are_filled_and_a_missing_one_is_refused() -> None:
    assert task_output(RUN_ID_FROM_PREPARE) == ("prepare-data", "mlflow-run-id")
    assert task_output("literal") is None
    text = "--run={{inputs.parameters.mlflow-run-id}}"
    assert fill_inputs(text, {"mlflow-run-id": "abc"}) == "--run=abc"
    with pytest.raises(WorkflowRejected, match="'mlflow-run-id' has no value"):
        fill_inputs(text, {})


REGISTERED = {
    "name": "llama-3-8b-sft-v1",
    "version": "4",
    "run_id": "0a1b",
    "source": "mlflow-artifacts:/1/0a1b/artifacts/model",
    "storage_uri": "s3://mlflow-artifacts/1/0a1b/artifacts/model",
}


def _argo_succeeded(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    workflow = render_workflow(request(), GPU)
    workflow["status"] = {
        "phase": "Succeeded",
        "progress": "4/4",
        "nodes": {
            "n4": {
                "type": "Pod",
                "displayName": "register",
                "phase": "Succeeded",
                "outputs": {"parameters": parameters},
            }
        },
    }
    return workflow


def test_argo_reports_the_model_version_register_created() -> None:
    parameter = {"name": "model-version", "value": json.dumps(REGISTERED)}
    observed = observe_workflow(_argo_succeeded([parameter]))
    assert observed.phase == Phase.SUCCEEDED
    assert observed.registered_model is not None
    assert observed.registered_model.model_dump() == REGISTERED


def test_an_unreadable_model_version_output_is_ignored_not_fatal() -> None:
    observed = observe_workflow(_argo_succeeded([{"name": "model-version", "value": "{oops"}]))
    assert observed.phase == Phase.SUCCEEDED
    assert observed.registered_model is None


def test_local_defaults_suit_a_laptop_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_DATA_DIR", "/data/stack")
    monkeypatch.setenv("PATH", "/nowhere")  # no nvidia-smi
    local = WorkflowSettings(_env_file=None, workflow_backend=BackendKind.LOCAL)
    assert local.artifact_root == "/data/stack/artifacts"
    assert local.gpu_available is False
    assert local.watch_interval_s == 1.0
    assert str(local.local_workdir) == "/data/stack/pipelines"
    chosen = WorkflowSettings(
        _env_file=None,
        workflow_backend=BackendKind.LOCAL,
        artifact_root="s3://bucket",
        gpu_available=True,
        watch_interval_s=3,
    )
    assert (chosen.artifact_root, chosen.gpu_available, chosen.watch_interval_s) == (
        "s3://bucket",
        True,
        3,
    )
    cluster = WorkflowSettings(_env_file=None, workflow_backend=BackendKind.MANIFESTS)
    assert cluster.artifact_root == "s3://llm-ops-artifacts"
