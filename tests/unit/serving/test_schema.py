"""Every rendered InferenceService against KServe's v0.20 CRD schema, strictly."""

from __future__ import annotations

import copy

import pytest

from support.kserve_crd import CRD_PATH, schema_errors, strict
from unit.serving.cases import CASES, INFERENCE_SERVICE_CASES

pytestmark = [pytest.mark.unit, pytest.mark.contract]


def test_the_pinned_crd_is_there() -> None:
    assert CRD_PATH.is_file(), f"{CRD_PATH} missing: CI keeps shared/ beside the repository"


@pytest.mark.parametrize("name", INFERENCE_SERVICE_CASES)
def test_rendered_inference_service_is_valid(name: str) -> None:
    assert schema_errors(CASES[name]()) == []


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (("spec", "predictor"), "canaryTraficPercent"),
        (("spec", "predictor", "model"), "storageURI"),
        (("spec",), "canaries"),
    ],
)
def test_a_misspelt_field_is_rejected(path: tuple[str, ...], typo: str) -> None:
    manifest = copy.deepcopy(CASES["canary_serverless"]())
    node = manifest
    for key in path:
        node = node[key]
    node[typo] = 10
    errors = schema_errors(manifest)
    assert errors, "the strict schema accepted a misspelt field"
    assert any(typo in e for e in errors), errors


def test_a_wrong_type_is_rejected() -> None:
    manifest = copy.deepcopy(CASES["canary_serverless"]())
    manifest["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    assert schema_errors(manifest)


def test_canary_percent_over_100_is_rejected_in_standard_mode() -> None:
    manifest = copy.deepcopy(CASES["canary_standard"]())
    manifest["spec"]["canary"][0]["trafficPercent"] = 101
    assert schema_errors(manifest)


def test_int_or_string_quantities_accept_both() -> None:
    manifest = copy.deepcopy(CASES["gpu_blue_green"]())
    resources = manifest["spec"]["predictor"]["model"]["resources"]
    resources["limits"]["nvidia.com/gpu"] = 2
    resources["requests"]["cpu"] = "500m"
    assert schema_errors(manifest) == []
    resources["requests"]["cpu"] = [1]
    assert schema_errors(manifest)


def test_strict_keeps_preserve_unknown_fields_open() -> None:
    node = {"properties": {"a": {"type": "string"}}, "x-kubernetes-preserve-unknown-fields": True}
    assert "additionalProperties" not in strict(node)
    assert strict({"properties": {}})["additionalProperties"] is False
