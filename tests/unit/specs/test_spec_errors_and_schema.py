"""How violations surface to callers: nested in another model, in a FastAPI 422, in JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import BaseModel, ValidationError

from llmops_shared.specs import (
    SPEC_RULE_ERROR_TYPE,
    DeploymentSpec,
    RuleViolation,
    TrainJobSpec,
    supported_families,
    violations_to_validation_error,
)

from unit.specs.specs_seed_examples import SEED_DEPLOYMENT_SPEC, SEED_TRAIN_JOB_SPEC, train_spec

pytestmark = pytest.mark.unit

INVALID = train_spec(model_family="gpt", dataset_ref__type="rag_qa", hyperparams__lr=0)
EXPECTED = [
    (("hyperparams", "lr"), "greater_than", "Input should be greater than 0"),
    (("model_family",), SPEC_RULE_ERROR_TYPE, "Model family 'gpt' is not supported"),
    (
        ("dataset_ref", "type"),
        SPEC_RULE_ERROR_TYPE,
        "Dataset type 'rag_qa' is not compatible with job_type 'SFT'",
    ),
]


class TrainingJobRequest(BaseModel):
    """Shaped like the gateway's request body (seed section 5.1)."""

    modelId: str
    trainJobSpec: TrainJobSpec


def summary(errors: list[Any], prefix: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    return [(tuple(e["loc"])[len(prefix) :], e["type"], e["msg"]) for e in errors]


def test_standalone_errors() -> None:
    with pytest.raises(ValidationError) as info:
        TrainJobSpec.model_validate(INVALID)

    assert summary(info.value.errors()) == EXPECTED


def test_nested_errors_keep_their_location_and_message() -> None:
    with pytest.raises(ValidationError) as info:
        TrainingJobRequest.model_validate({"modelId": "m", "trainJobSpec": INVALID})

    errors = info.value.errors()
    assert all(e["loc"][0] == "trainJobSpec" for e in errors)
    assert summary(errors, ("trainJobSpec",)) == EXPECTED
    assert errors[1]["ctx"] == {"rule": "model_family_supported"}


def test_nested_in_a_list_and_from_json() -> None:
    class Batch(BaseModel):
        specs: list[TrainJobSpec]

    body = {"specs": [SEED_TRAIN_JOB_SPEC, INVALID]}

    with pytest.raises(ValidationError) as info:
        Batch.model_validate_json(json.dumps(body))

    assert [e["loc"][:2] for e in info.value.errors()] == [("specs", 1)] * 3
    assert summary(info.value.errors(), ("specs", "1")) == EXPECTED


def test_fastapi_returns_422_with_each_violation() -> None:
    fastapi = pytest.importorskip("fastapi")
    testclient = pytest.importorskip("fastapi.testclient")
    app = fastapi.FastAPI()

    @app.post("/training/jobs")  # type: ignore[untyped-decorator]
    def submit(request: TrainingJobRequest) -> dict[str, str]:
        return {"job_type": request.trainJobSpec.job_type}

    client = testclient.TestClient(app)

    ok = client.post("/training/jobs", json={"modelId": "m", "trainJobSpec": SEED_TRAIN_JOB_SPEC})
    bad = client.post("/training/jobs", json={"modelId": "m", "trainJobSpec": INVALID})

    assert ok.status_code == 200
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert [(e["loc"], e["type"], e["msg"]) for e in detail] == [
        (["body", "trainJobSpec", *loc], error_type, msg) for loc, error_type, msg in EXPECTED
    ]


def test_catalog_violations_in_the_same_shape() -> None:
    violation = RuleViolation(
        ("hyperparams", "max_seq_len"),
        "SFT max_seq_len must be <= base_model.max_position_embeddings (4096 > 2048)",
        "max_seq_len_fits_base_model",
        input=4096,
    )

    exc = violations_to_validation_error("TrainJobSpec", [violation], ("body", "trainJobSpec"))

    assert exc.errors(include_url=False) == [
        {
            "type": SPEC_RULE_ERROR_TYPE,
            "loc": ("body", "trainJobSpec", "hyperparams", "max_seq_len"),
            "msg": violation.message,
            "input": 4096,
            "ctx": {"rule": "max_seq_len_fits_base_model"},
        }
    ]


class TestJsonSchema:
    @pytest.mark.parametrize("model", [TrainJobSpec, DeploymentSpec])
    def test_every_object_forbids_extra_and_every_field_is_described(
        self, model: type[BaseModel]
    ) -> None:
        schema = model.model_json_schema()
        objects = [schema, *schema.get("$defs", {}).values()]

        for obj in (o for o in objects if o.get("type") == "object"):
            assert obj["additionalProperties"] is False, obj["title"]
            for name, prop in obj["properties"].items():
                assert prop.get("description"), f"{obj['title']}.{name}"

    @pytest.mark.parametrize(
        ("model", "example"),
        [(TrainJobSpec, SEED_TRAIN_JOB_SPEC), (DeploymentSpec, SEED_DEPLOYMENT_SPEC)],
    )
    def test_seed_examples_match_the_schema(
        self, model: type[BaseModel], example: dict[str, Any]
    ) -> None:
        jsonschema.Draft202012Validator(model.model_json_schema()).validate(example)

    def test_schema_lists_the_whitelist(self) -> None:
        schema = TrainJobSpec.model_json_schema()
        validator = jsonschema.Draft202012Validator(schema)

        assert schema["properties"]["model_family"]["enum"] == list(supported_families())
        assert not validator.is_valid(train_spec(model_family="gpt"))
        assert not validator.is_valid(train_spec(dataset_ref__type="images"))
        assert not validator.is_valid(train_spec(extra=1))
