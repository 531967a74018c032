"""DeploymentSpec: the seed example, every schema-level rule, and TrafficSplit on its own."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llmops_shared.specs import (
    SERVE_TARGET_FOR_JOB,
    SPEC_RULE_ERROR_TYPE,
    DeploymentSpec,
    JobType,
    RuleViolation,
    ServeTarget,
    TrafficSplit,
    deployment_rule_violations,
    deployment_spec_violations,
)

from unit.specs.specs_seed_examples import (
    DELETE,
    EMBEDDING_DEPLOYMENT_CHANGES,
    SEED_DEPLOYMENT_SPEC,
    changed,
    deployment_spec,
)

pytestmark = pytest.mark.unit

BLUE_GREEN = {"rollout": {"strategy": "blue-green"}}


def errors_of(data: dict[str, Any]) -> list[ErrorDetails]:
    """The pydantic errors of validating ``data`` (fails the test when it validates)."""
    with pytest.raises(ValidationError) as info:
        DeploymentSpec.model_validate(data)
    return info.value.errors(include_url=False)


def test_seed_example_validates_and_round_trips() -> None:
    spec = DeploymentSpec.model_validate(SEED_DEPLOYMENT_SPEC)

    assert spec.serve_target is ServeTarget.GENERATION
    assert spec.rollout.traffic_split == TrafficSplit(old=90, new=10)
    assert spec.model_dump(mode="json") == SEED_DEPLOYMENT_SPEC
    assert DeploymentSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(BLUE_GREEN, id="blue-green"),
        pytest.param(EMBEDDING_DEPLOYMENT_CHANGES, id="embedding-zero-output-tokens"),
        pytest.param({"job_type": "RAG_TUNING", "serve_target": "RAG"}, id="rag-tuning"),
        pytest.param({"job_type": "PRETRAIN"}, id="pretrain-generation"),
        pytest.param({"job_type": "RLHF", "model_family": "gemma"}, id="rlhf-gemma"),
        pytest.param(
            {"use_gpu": False, "resources": {"gpus": 0, "gpu_memory_gb": 0}}, id="cpu-zero-gpus"
        ),
        pytest.param({"rollout.traffic_split": {"old": 0, "new": 100}}, id="canary-all-new"),
    ],
)
def test_valid_variants(changes: dict[str, Any]) -> None:
    DeploymentSpec.model_validate(changed(SEED_DEPLOYMENT_SPEC, changes))


# (changes to the seed spec, loc, exact message, rule); each breaks exactly one rule.
RULE_CASES = [
    pytest.param(
        {"model_family": "phi"},
        ("model_family",),
        "Model family 'phi' is not supported",
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
        {"serve_target": "RAG"},
        ("serve_target",),
        "Serve target 'RAG' is not compatible with job_type 'SFT'",
        "serve_target_compatible",
        id="serve-target",
    ),
    pytest.param(
        {"resources.gpus": 0},
        ("resources", "gpus"),
        "resources.gpus must be >= 1 when use_gpu is true (got 0)",
        "gpus_when_use_gpu",
        id="gpus-when-use-gpu",
    ),
    pytest.param(
        {"resources.gpu_memory_gb": 0},
        ("resources", "gpu_memory_gb"),
        "resources.gpu_memory_gb must be >= 1 when use_gpu is true (got 0)",
        "gpu_memory_when_use_gpu",
        id="gpu-memory-when-use-gpu",
    ),
    pytest.param(
        {"runtime.max_output_tokens": 0},
        ("runtime", "max_output_tokens"),
        "runtime.max_output_tokens must be >= 1 for job_type 'SFT' "
        "(0 is allowed only for EMBEDDING), got 0",
        "max_output_tokens",
        id="output-tokens",
    ),
    pytest.param(
        {"rollout.traffic_split": DELETE},
        ("rollout", "traffic_split"),
        "rollout.traffic_split is required when rollout.strategy is 'canary'",
        "canary_traffic_split",
        id="canary-needs-split",
    ),
    pytest.param(
        {"rollout.traffic_split": None},
        ("rollout", "traffic_split"),
        "rollout.traffic_split is required when rollout.strategy is 'canary'",
        "canary_traffic_split",
        id="canary-null-split",
    ),
    pytest.param(
        {"rollout.strategy": "blue-green"},
        ("rollout", "traffic_split"),
        "rollout.traffic_split must not be set when rollout.strategy is 'blue-green' "
        "(blue-green switches all traffic at once)",
        "blue_green_traffic_split",
        id="blue-green-no-split",
    ),
    pytest.param(
        {"rollout.traffic_split": {"old": 90, "new": 20}},
        ("rollout", "traffic_split"),
        "traffic_split old + new must sum to 100 (got 90 + 20 = 110)",
        "traffic_split_sum",
        id="split-sums-to-100",
    ),
    pytest.param(
        {"rollout.traffic_split": {"old": 0, "new": 0}},
        ("rollout", "traffic_split"),
        "traffic_split old + new must sum to 100 (got 0 + 0 = 0)",
        "traffic_split_sum",
        id="split-zero",
    ),
]


@pytest.mark.parametrize(("changes", "loc", "message", "rule"), RULE_CASES)
def test_each_rule_reports_its_violation(
    changes: dict[str, Any], loc: tuple[str, ...], message: str, rule: str
) -> None:
    data = changed(SEED_DEPLOYMENT_SPEC, changes)

    errors = errors_of(data)

    assert [(e["type"], e["loc"], e["msg"], e["ctx"]) for e in errors] == [
        (SPEC_RULE_ERROR_TYPE, loc, message, {"rule": rule})
    ]
    assert deployment_rule_violations(data) == [RuleViolation(loc, message, rule)]


FIELD_CASES = [
    pytest.param({"serve_target": "CHAT"}, ("serve_target",), "enum", id="serve-target-enum"),
    pytest.param({"rollout.strategy": "rolling"}, ("rollout", "strategy"), "enum", id="strategy"),
    pytest.param(
        {"rollout.traffic_split": {"old": 101, "new": -1}},
        ("rollout", "traffic_split", "old"),
        "less_than_equal",
        id="split-old-range",
    ),
    pytest.param(
        {"runtime.max_concurrent_requests": 0},
        ("runtime", "max_concurrent_requests"),
        "greater_than_equal",
        id="concurrency",
    ),
    pytest.param(
        {"runtime.max_input_tokens": 0},
        ("runtime", "max_input_tokens"),
        "greater_than_equal",
        id="input-tokens",
    ),
    pytest.param(
        {"runtime.max_output_tokens": -1},
        ("runtime", "max_output_tokens"),
        "greater_than_equal",
        id="output-tokens-negative",
    ),
    pytest.param({"rollout.weights": 1}, ("rollout", "weights"), "extra_forbidden", id="extra"),
    pytest.param({"model_ref": ""}, ("model_ref",), "string_too_short", id="empty-model-ref"),
]


@pytest.mark.parametrize(("changes", "loc", "error_type"), FIELD_CASES)
def test_field_constraints(changes: dict[str, Any], loc: tuple[str, ...], error_type: str) -> None:
    errors = errors_of(changed(SEED_DEPLOYMENT_SPEC, changes))

    assert (loc, error_type) == (errors[0]["loc"], errors[0]["type"])


@pytest.mark.parametrize(
    ("job_type", "target"), list(itertools.product(list(JobType), list(ServeTarget)))
)
def test_serve_target_compatibility_matrix(job_type: JobType, target: ServeTarget) -> None:
    """Each job type deploys as exactly one serve target."""
    base = EMBEDDING_DEPLOYMENT_CHANGES if job_type is JobType.EMBEDDING else {}
    data = changed(SEED_DEPLOYMENT_SPEC, {**base, "job_type": job_type, "serve_target": target})
    violations = deployment_rule_violations(data)

    if SERVE_TARGET_FOR_JOB[job_type] == target:
        assert violations == []
        DeploymentSpec.model_validate(data)
    else:
        assert [v.message for v in violations] == [
            f"Serve target '{target}' is not compatible with job_type '{job_type}'"
        ]


def test_embedding_models_serve_rag_not_generation() -> None:
    assert SERVE_TARGET_FOR_JOB[JobType.EMBEDDING] is ServeTarget.RAG
    assert SERVE_TARGET_FOR_JOB[JobType.RAG_TUNING] is ServeTarget.RAG


def test_all_violations_are_reported_together() -> None:
    data = deployment_spec(
        model_family="phi",
        serve_target="RAG",
        resources={"gpus": 0, "gpu_memory_gb": 0},
        runtime__max_output_tokens=0,
        rollout__traffic_split={"old": 50, "new": 40},
        runtime__max_concurrent_requests=0,
    )

    errors = errors_of(data)

    assert sorted(e["loc"] for e in errors) == sorted(
        [
            ("runtime", "max_concurrent_requests"),
            ("rollout", "traffic_split"),
            ("model_family",),
            ("serve_target",),
            ("resources", "gpus"),
            ("resources", "gpu_memory_gb"),
            ("runtime", "max_output_tokens"),
        ]
    )
    split_errors = [e for e in errors if e["loc"] == ("rollout", "traffic_split")]
    assert [e["msg"] for e in split_errors] == [
        "traffic_split old + new must sum to 100 (got 50 + 40 = 90)"
    ]


class TestTrafficSplit:
    def test_standalone_split_checks_its_sum(self) -> None:
        with pytest.raises(ValidationError) as info:
            TrafficSplit(old=50, new=40)

        (error,) = info.value.errors()
        assert (error["type"], error["loc"], error["msg"]) == (
            SPEC_RULE_ERROR_TYPE,
            (),
            "traffic_split old + new must sum to 100 (got 50 + 40 = 90)",
        )

    @pytest.mark.parametrize(("old", "new"), [(100, 0), (50, 50), (1, 99)])
    def test_splits_summing_to_100_are_valid(self, old: int, new: int) -> None:
        assert TrafficSplit(old=old, new=new).old == old


class TestDeploymentSpecViolations:
    def test_valid_spec_has_none(self) -> None:
        assert deployment_spec_violations(SEED_DEPLOYMENT_SPEC) == []
        assert deployment_spec_violations(DeploymentSpec.model_validate(SEED_DEPLOYMENT_SPEC)) == []

    def test_stored_dict_gets_every_violation(self) -> None:
        violations = deployment_spec_violations(
            deployment_spec(serve_target="RAG", rollout__traffic_split={"old": 1, "new": 1})
        )

        assert [(v.loc, v.rule) for v in violations] == [
            (("rollout", "traffic_split"), "traffic_split_sum"),
            (("serve_target",), "serve_target_compatible"),
        ]
