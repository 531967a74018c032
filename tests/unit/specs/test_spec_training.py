"""TrainJobSpec: the seed example, every schema-level rule, and how violations are reported."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llmops_shared.specs import (
    DATASET_TYPE_FOR_JOB,
    SPEC_RULE_ERROR_TYPE,
    DatasetType,
    JobType,
    RuleViolation,
    TrainJobSpec,
    train_job_rule_violations,
    train_job_spec_violations,
)

from unit.specs.specs_seed_examples import (
    DELETE,
    EMBEDDING_TRAIN_CHANGES,
    PRETRAIN_CHANGES,
    SEED_TRAIN_JOB_SPEC,
    changed,
    train_spec,
)

pytestmark = pytest.mark.unit


def errors_of(data: dict[str, Any]) -> list[ErrorDetails]:
    """The pydantic errors of validating ``data`` (fails the test when it validates)."""
    with pytest.raises(ValidationError) as info:
        TrainJobSpec.model_validate(data)
    return info.value.errors(include_url=False)


def test_seed_example_validates_and_round_trips() -> None:
    spec = TrainJobSpec.model_validate(SEED_TRAIN_JOB_SPEC)

    assert spec.job_type is JobType.SFT
    assert spec.hyperparams.max_seq_len == 4096
    assert spec.resources.gpu_type == "A100"
    assert spec.model_dump(mode="json") == SEED_TRAIN_JOB_SPEC
    assert TrainJobSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(PRETRAIN_CHANGES, id="pretrain"),
        pytest.param(EMBEDDING_TRAIN_CHANGES, id="embedding-bert"),
        pytest.param({"job_type": "RAG_TUNING", "dataset_ref.type": "rag_qa"}, id="rag-tuning"),
        pytest.param({"job_type": "RLHF", "dataset_ref.type": "rlhf_pair"}, id="rlhf"),
        pytest.param({"model_family": "mistral", "method": "qlora"}, id="mistral-qlora"),
        pytest.param({"model_family": "gemma", "method": "full"}, id="gemma-full"),
        pytest.param({"use_gpu": False, "resources.gpus": 0}, id="cpu-zero-gpus"),
        pytest.param({"resources.gpu_type": DELETE, "resources.nodes": DELETE}, id="defaults"),
    ],
)
def test_valid_variants(changes: dict[str, Any]) -> None:
    TrainJobSpec.model_validate(changed(SEED_TRAIN_JOB_SPEC, changes))


# (changes to the seed spec, loc, exact message, rule); each breaks exactly one rule.
RULE_CASES = [
    pytest.param(
        {"model_family": "gpt"},
        ("model_family",),
        "Model family 'gpt' is not supported",
        "model_family_supported",
        id="family-whitelist",
    ),
    pytest.param(
        {"model_family": "bert"},
        ("model_family",),
        "Model family 'bert' is not supported for job_type 'SFT'",
        "model_family_job_type",
        id="bert-embedding-only",
    ),
    pytest.param(
        {"dataset_ref.type": "rag_qa"},
        ("dataset_ref", "type"),
        "Dataset type 'rag_qa' is not compatible with job_type 'SFT'",
        "dataset_type_compatible",
        id="dataset-type-compatible",
    ),
    pytest.param(
        {"dataset_ref.type": "images"},
        ("dataset_ref", "type"),
        "Dataset type 'images' is not supported",
        "dataset_type_supported",
        id="dataset-type-known",
    ),
    pytest.param(
        {"base_model_ref": None},
        ("base_model_ref",),
        "base_model_ref is required for job_type 'SFT'",
        "base_model_ref_required",
        id="base-model-required",
    ),
    pytest.param(
        {"base_model_ref": DELETE},
        ("base_model_ref",),
        "base_model_ref is required for job_type 'SFT'",
        "base_model_ref_required",
        id="base-model-missing",
    ),
    pytest.param(
        {**PRETRAIN_CHANGES, "base_model_ref": "llama-3-8b"},
        ("base_model_ref",),
        "base_model_ref must be null for job_type 'PRETRAIN' (got 'llama-3-8b')",
        "base_model_ref_pretrain",
        id="pretrain-no-base-model",
    ),
    pytest.param(
        {**PRETRAIN_CHANGES, "method": "lora"},
        ("method",),
        "PRETRAIN only supports method 'full', got 'lora'",
        "pretrain_method",
        id="pretrain-full-only-lora",
    ),
    pytest.param(
        {**PRETRAIN_CHANGES, "method": "qlora"},
        ("method",),
        "PRETRAIN only supports method 'full', got 'qlora'",
        "pretrain_method",
        id="pretrain-full-only-qlora",
    ),
    pytest.param(
        {"resources.gpus": 0},
        ("resources", "gpus"),
        "resources.gpus must be >= 1 when use_gpu is true (got 0)",
        "gpus_when_use_gpu",
        id="gpus-when-use-gpu",
    ),
]


@pytest.mark.parametrize(("changes", "loc", "message", "rule"), RULE_CASES)
def test_each_rule_reports_its_violation(
    changes: dict[str, Any], loc: tuple[str, ...], message: str, rule: str
) -> None:
    data = changed(SEED_TRAIN_JOB_SPEC, changes)

    assert errors_of(data) == [
        {
            "type": SPEC_RULE_ERROR_TYPE,
            "loc": loc,
            "msg": message,
            "input": data.get(loc[0]) if len(loc) == 1 else data[loc[0]][loc[1]],
            "ctx": {"rule": rule},
        }
    ]
    assert train_job_rule_violations(data) == [RuleViolation(loc, message, rule)]


# (changes, loc, pydantic error type): bounds and vocabularies enforced by field constraints.
FIELD_CASES = [
    pytest.param({"hyperparams.lr": 0}, ("hyperparams", "lr"), "greater_than", id="lr"),
    pytest.param(
        {"hyperparams.batch_size": 0},
        ("hyperparams", "batch_size"),
        "greater_than_equal",
        id="batch",
    ),
    pytest.param(
        {"hyperparams.num_epochs": 0},
        ("hyperparams", "num_epochs"),
        "greater_than_equal",
        id="epochs",
    ),
    pytest.param(
        {"hyperparams.max_seq_len": 0},
        ("hyperparams", "max_seq_len"),
        "greater_than_equal",
        id="seq",
    ),
    pytest.param(
        {"hyperparams.precision": "fp32"}, ("hyperparams", "precision"), "enum", id="precision"
    ),
    pytest.param({"method": "adapter"}, ("method",), "enum", id="method"),
    pytest.param(
        {"output.save_format": "onnx"}, ("output", "save_format"), "enum", id="save-format"
    ),
    pytest.param({"resources.nodes": 0}, ("resources", "nodes"), "greater_than_equal", id="nodes"),
    pytest.param(
        {"use_gpu": False, "resources.gpus": -1},
        ("resources", "gpus"),
        "greater_than_equal",
        id="gpus",
    ),
    pytest.param({"job_type": "FINETUNE"}, ("job_type",), "enum", id="job-type"),
    pytest.param({"surprise": 1}, ("surprise",), "extra_forbidden", id="extra-top"),
    pytest.param(
        {"dataset_ref.sha": "x"}, ("dataset_ref", "sha"), "extra_forbidden", id="extra-nested"
    ),
    pytest.param(
        {"dataset_ref.name": ""}, ("dataset_ref", "name"), "string_too_short", id="empty-name"
    ),
    pytest.param({"output": DELETE}, ("output",), "missing", id="missing"),
]


@pytest.mark.parametrize(("changes", "loc", "error_type"), FIELD_CASES)
def test_field_constraints(changes: dict[str, Any], loc: tuple[str, ...], error_type: str) -> None:
    errors = errors_of(changed(SEED_TRAIN_JOB_SPEC, changes))

    assert [(e["loc"], e["type"]) for e in errors] == [(loc, error_type)]


@pytest.mark.parametrize(
    ("job_type", "dataset_type"), list(itertools.product(list(JobType), list(DatasetType)))
)
def test_dataset_type_compatibility_matrix(job_type: JobType, dataset_type: DatasetType) -> None:
    """Each job type accepts exactly its one dataset type; every other pairing is rejected."""
    base = {
        JobType.PRETRAIN: PRETRAIN_CHANGES,
        JobType.EMBEDDING: EMBEDDING_TRAIN_CHANGES,
    }.get(job_type, {})
    data = changed(
        SEED_TRAIN_JOB_SPEC, {**base, "job_type": job_type, "dataset_ref.type": dataset_type}
    )
    violations = train_job_rule_violations(data)

    if DATASET_TYPE_FOR_JOB[job_type] == dataset_type:
        assert violations == []
        TrainJobSpec.model_validate(data)
    else:
        assert [v.message for v in violations] == [
            f"Dataset type '{dataset_type}' is not compatible with job_type '{job_type}'"
        ]


def test_embedding_trains_on_embedding_pairs() -> None:
    assert DATASET_TYPE_FOR_JOB[JobType.EMBEDDING] == "embedding_pair"


def test_all_violations_are_reported_together() -> None:
    data = train_spec(
        job_type="PRETRAIN",
        model_family="gpt",
        dataset_ref__type="sft_pair",
        method="lora",
        resources__gpus=0,
        hyperparams__lr=-1,
    )

    errors = errors_of(data)

    assert {(e["loc"], e["msg"]) for e in errors} == {
        (("hyperparams", "lr"), "Input should be greater than 0"),
        (("model_family",), "Model family 'gpt' is not supported"),
        (
            ("base_model_ref",),
            "base_model_ref must be null for job_type 'PRETRAIN' (got 'llama-3-8b-pretrain-v1')",
        ),
        (
            ("dataset_ref", "type"),
            "Dataset type 'sft_pair' is not compatible with job_type 'PRETRAIN'",
        ),
        (("method",), "PRETRAIN only supports method 'full', got 'lora'"),
        (("resources", "gpus"), "resources.gpus must be >= 1 when use_gpu is true (got 0)"),
    }
    assert len(errors) == 6


def test_rule_on_a_field_that_failed_to_parse_is_not_repeated() -> None:
    """A value pydantic already rejected is not also reported by a rule reading it."""
    errors = errors_of(train_spec(resources__gpus="many", dataset_ref__type="images"))

    assert [(e["loc"], e["type"]) for e in errors] == [
        (("resources", "gpus"), "int_parsing"),
        (("dataset_ref", "type"), SPEC_RULE_ERROR_TYPE),
    ]


def test_json_input_reports_the_same_violations() -> None:
    data = train_spec(model_family="falcon", dataset_ref__type="rlhf_pair")

    with pytest.raises(ValidationError) as info:
        TrainJobSpec.model_validate_json(json.dumps(data))

    assert [e["msg"] for e in info.value.errors()] == [
        "Model family 'falcon' is not supported",
        "Dataset type 'rlhf_pair' is not compatible with job_type 'SFT'",
    ]


def test_spec_is_immutable() -> None:
    spec = TrainJobSpec.model_validate(SEED_TRAIN_JOB_SPEC)

    with pytest.raises(ValidationError):
        spec.use_gpu = False  # type: ignore[misc]


class TestTrainJobSpecViolations:
    """The flat-list entry point for re-checking stored specs."""

    def test_valid_dict_and_model_have_none(self) -> None:
        assert train_job_spec_violations(SEED_TRAIN_JOB_SPEC) == []
        assert train_job_spec_violations(TrainJobSpec.model_validate(SEED_TRAIN_JOB_SPEC)) == []

    def test_stored_dict_gets_rule_and_field_violations(self) -> None:
        violations = train_job_spec_violations(
            train_spec(hyperparams__num_epochs=0, model_family="gpt")
        )

        assert [(v.loc, v.error_type, v.rule) for v in violations] == [
            (("hyperparams", "num_epochs"), "greater_than_equal", "greater_than_equal"),
            (("model_family",), SPEC_RULE_ERROR_TYPE, "model_family_supported"),
        ]
        assert violations[1].message == "Model family 'gpt' is not supported"

    def test_model_built_without_validation_is_rechecked(self) -> None:
        """A model from an older rule set (here: bypassing validation) is not trusted."""
        stale = TrainJobSpec.model_validate(SEED_TRAIN_JOB_SPEC).model_copy(
            update={"model_family": "bert"}
        )

        assert [v.message for v in train_job_spec_violations(stale)] == [
            "Model family 'bert' is not supported for job_type 'SFT'"
        ]
