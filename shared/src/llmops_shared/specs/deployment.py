"""DeploymentSpec: which trained model to serve, as what, with which limits and rollout
(the integration quickstart's DeploymentSpec structure and rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import PydanticCustomError

from llmops_shared.specs.base import SpecModel, validate_with_rules
from llmops_shared.specs.families import supported_families
from llmops_shared.specs.rules import deployment_rule_violations, traffic_split_violations
from llmops_shared.specs.violations import (
    SPEC_RULE_ERROR_TYPE,
    RuleViolation,
    violations_from_validation_error,
)
from llmops_shared.specs.vocab import JobType, RolloutStrategy, ServeTarget


class ServeResources(SpecModel):
    """Hardware per serving replica."""

    gpus: int = Field(ge=0, description="GPUs per replica; >= 1 when use_gpu is true.")
    gpu_memory_gb: int = Field(
        ge=0, description="GPU memory per GPU in GiB; >= 1 when use_gpu is true."
    )


class Runtime(SpecModel):
    """Serving limits passed to the model server."""

    max_concurrent_requests: int = Field(ge=1, description="Concurrent requests per replica.")
    max_input_tokens: int = Field(
        ge=1,
        description="Prompt tokens per request; input + output must fit the model's "
        "max_position_embeddings (checked against the catalog).",
    )
    max_output_tokens: int = Field(
        ge=0,
        description="Generated tokens per request; >= 1, except 0 is allowed for EMBEDDING "
        "(embedding models return vectors, not tokens).",
    )


class TrafficSplit(SpecModel):
    """Percentages of traffic for the old and the new model version during a canary."""

    old: int = Field(ge=0, le=100, description="Percent of traffic to the current version.")
    new: int = Field(ge=0, le=100, description="Percent of traffic to the new version.")

    @model_validator(mode="after")
    def _sums_to_100(self) -> TrafficSplit:
        # Lives on the model (not only in DeploymentSpec) so any event that carries a split
        # gets the same check.
        for violation in traffic_split_violations(self.model_dump()):
            raise PydanticCustomError(
                SPEC_RULE_ERROR_TYPE, violation.message, {"rule": violation.rule}
            )
        return self


class Rollout(SpecModel):
    """How the new version replaces the old one."""

    strategy: RolloutStrategy = Field(description="blue-green or canary.")
    traffic_split: TrafficSplit | None = Field(
        default=None, description="Required for canary; must be absent for blue-green."
    )


class DeploymentSpec(SpecModel):
    """A serving deployment request (the integration quickstart's DeploymentSpec structure).

    Cross-field rules (family whitelist, serve target, GPU counts, output tokens, rollout) are in
    :mod:`llmops_shared.specs.rules`; all violations are reported together.
    """

    model_ref: str = Field(min_length=1, description="Trained model artifact to serve.")
    model_family: str = Field(
        description="Model family; must be whitelisted and match the training job's.",
        json_schema_extra={"enum": list(supported_families())},
    )
    job_type: JobType = Field(description="Job type the model was trained with.")
    serve_target: ServeTarget = Field(
        description="GENERATION for PRETRAIN/SFT/RLHF; RAG for RAG_TUNING and EMBEDDING "
        "(embedding models serve the retrieval side of RAG and cannot generate)."
    )
    resources: ServeResources = Field(description="Hardware per replica.")
    runtime: Runtime = Field(description="Model server limits.")
    rollout: Rollout = Field(description="Rollout strategy.")
    use_gpu: bool = Field(
        description="Serve on GPUs; when the cluster has none, the CPU image is used instead."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> DeploymentSpec:
        return validate_with_rules(cls, data, handler, deployment_rule_violations)


def deployment_spec_violations(spec: DeploymentSpec | Mapping[str, Any]) -> list[RuleViolation]:
    """Everything wrong with ``spec`` under the current rules and field constraints (empty when
    valid); see :func:`llmops_shared.specs.training.train_job_spec_violations`."""
    data = spec.model_dump(mode="json") if isinstance(spec, DeploymentSpec) else spec
    try:
        DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        return violations_from_validation_error(exc)
    return []
