"""Every rendered Workflow against Argo's JSON Schema (v4.1.2 line), strictly; the built-in
Jobs' containers, volumes and tolerations against the Kubernetes types the same file carries
(it has no PodSpec or Job)."""

from __future__ import annotations

import copy

import pytest

from support.argo_schema import SCHEMA_PATH, schema_errors, strict
from unit.workflow.cases import CASES, JOB_CASES, WORKFLOW_CASES

pytestmark = [pytest.mark.unit, pytest.mark.contract]


def test_the_pinned_schema_is_there() -> None:
    assert SCHEMA_PATH.is_file(), f"{SCHEMA_PATH} missing: CI keeps shared/ beside the repository"


@pytest.mark.parametrize("name", WORKFLOW_CASES)
def test_rendered_workflow_is_valid(name: str) -> None:
    assert schema_errors(CASES[name]()) == []


@pytest.mark.parametrize("name", JOB_CASES)
def test_builtin_job_pod_parts_are_valid(name: str) -> None:
    core = "io.k8s.api.core.v1."
    for job in CASES[name]()["items"]:
        pod = job["spec"]["template"]["spec"]
        for container in pod["containers"]:
            assert schema_errors(container, core + "Container") == []
        for volume in pod.get("volumes", []):
            assert schema_errors(volume, core + "Volume") == []
        for toleration in pod.get("tolerations", []):
            assert schema_errors(toleration, core + "Toleration") == []


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (("spec",), "activeDeadlineSecond"),
        (("spec", "ttlStrategy"), "secondsAfterSucess"),
        (("spec", "templates", 2, "retryStrategy"), "retryPolicyy"),
        (("spec", "templates", 2, "container"), "imagePullPolcy"),
        (("spec", "templates", 0, "dag", "tasks", 1), "dependencies_"),
    ],
)
def test_a_misspelt_field_is_rejected(path: tuple[str | int, ...], typo: str) -> None:
    manifest = copy.deepcopy(CASES["sft_lora"]())
    node = manifest
    for key in path:
        node = node[key]
    node[typo] = "x"
    errors = schema_errors(manifest)
    assert errors, "the strict schema accepted a misspelt field"
    assert any(typo in e for e in errors), errors


def test_a_wrong_type_is_rejected() -> None:
    manifest = copy.deepcopy(CASES["sft_lora"]())
    manifest["spec"]["activeDeadlineSeconds"] = "a week"
    assert schema_errors(manifest)
    manifest = copy.deepcopy(CASES["sft_lora"]())
    manifest["kind"] = "CronWorkflow"
    assert schema_errors(manifest)


def test_strict_keeps_open_maps_open() -> None:
    node = {"properties": {"a": {"type": "string"}}, "x-kubernetes-preserve-unknown-fields": True}
    assert "additionalProperties" not in strict(node)
    assert strict({"properties": {}})["additionalProperties"] is False
    manifest = copy.deepcopy(CASES["sft_lora"]())
    manifest["metadata"]["labels"]["anything.example.com/free"] = "form"  # a map, not a typo
    assert schema_errors(manifest) == []
