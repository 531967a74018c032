"""Schema-level spec rules as pure functions over plain mappings.

They take mappings, not models, on purpose: the models' validators run them on the raw input
even when some fields failed to parse (so a client sees every problem at once), and scripts can
run them over stored JSON. Each rule reads only the fields it needs and stays silent when those
are missing or ill-typed; pydantic's own field errors cover that case.

Numeric bounds that need no other field (``lr > 0``, ``nodes >= 1``...) are pydantic field
constraints on the models instead, so they also show up in the JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from llmops_shared.specs.families import get_family
from llmops_shared.specs.violations import RuleViolation
from llmops_shared.specs.vocab import (
    DATASET_TYPE_FOR_JOB,
    SERVE_TARGET_FOR_JOB,
    DatasetType,
    JobType,
    RolloutStrategy,
    TrainMethod,
)

Spec = Mapping[str, Any]
Rule = Callable[[Spec], Iterator[RuleViolation]]

# --- tolerant accessors -------------------------------------------------------------------


def _get(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...`` or None when any step is missing or not a mapping."""
    current = data
    for key in path:
        if not isinstance(current, dict | Mapping):  # dict first: the common, fast case
            return None
        current = current.get(key)
    return current


_JOB_TYPES: Final[Mapping[str, JobType]] = {job_type.value: job_type for job_type in JobType}


def _job_type(data: Spec) -> JobType | None:
    value = data.get("job_type")
    return _JOB_TYPES.get(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    """An int that is not a bool (``True`` is an ``int`` in Python, never a count here)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


# --- rules shared by both specs ------------------------------------------------------------


def model_family_rule(data: Spec) -> Iterator[RuleViolation]:
    """model_family must be whitelisted, and the family must support the job type."""
    name = data.get("model_family")
    if not isinstance(name, str):
        return
    family = get_family(name)
    if family is None:
        yield RuleViolation(
            ("model_family",),
            f"Model family '{name}' is not supported",
            "model_family_supported",
            input=name,
        )
        return
    job_type = _job_type(data)
    if job_type is not None and not family.supports(job_type):
        yield RuleViolation(
            ("model_family",),
            f"Model family '{name}' is not supported for job_type '{job_type}'",
            "model_family_job_type",
            input=name,
        )


def _gpu_minimum_rule(section: str, field: str, rule: str) -> Rule:
    """A GPU request (``use_gpu: true``) with zero of ``section.field`` cannot be scheduled on
    a GPU node; catch it here rather than let the scheduler hang or silently use the CPU."""

    def check(data: Spec) -> Iterator[RuleViolation]:
        value = _int(_get(data, section, field))
        if data.get("use_gpu") is True and value is not None and value < 1:
            yield RuleViolation(
                (section, field),
                f"{section}.{field} must be >= 1 when use_gpu is true (got {value})",
                rule,
                input=value,
            )

    check.__doc__ = f"{section}.{field} must be >= 1 when use_gpu is true."
    return check


# --- TrainJobSpec ----------------------------------------------------------------------------


def dataset_type_rule(data: Spec) -> Iterator[RuleViolation]:
    """dataset_ref.type must be a known type, and the one the job type trains on."""
    value = _get(data, "dataset_ref", "type")
    if not isinstance(value, str):
        return
    loc = ("dataset_ref", "type")
    if value not in DatasetType.__members__.values():
        yield RuleViolation(
            loc, f"Dataset type '{value}' is not supported", "dataset_type_supported", input=value
        )
        return
    job_type = _job_type(data)
    if job_type is not None and DATASET_TYPE_FOR_JOB[job_type] != value:
        yield RuleViolation(
            loc,
            f"Dataset type '{value}' is not compatible with job_type '{job_type}'",
            "dataset_type_compatible",
            input=value,
        )


def base_model_ref_rule(data: Spec) -> Iterator[RuleViolation]:
    """PRETRAIN starts from scratch (base_model_ref null); every other job type fine-tunes an
    existing model and must name it."""
    job_type = _job_type(data)
    if job_type is None:
        return
    ref = data.get("base_model_ref")
    loc = ("base_model_ref",)
    if job_type is JobType.PRETRAIN and ref is not None:
        yield RuleViolation(
            loc,
            f"base_model_ref must be null for job_type 'PRETRAIN' (got '{ref}')",
            "base_model_ref_pretrain",
            input=ref,
        )
    elif job_type is not JobType.PRETRAIN and ref is None:
        yield RuleViolation(
            loc,
            f"base_model_ref is required for job_type '{job_type}'",
            "base_model_ref_required",
            input=ref,
        )


def pretrain_method_rule(data: Spec) -> Iterator[RuleViolation]:
    """Adapters (lora/qlora) need base weights to adapt; PRETRAIN has none, so only full."""
    method = data.get("method")
    if (
        _job_type(data) is JobType.PRETRAIN
        and isinstance(method, str)
        and method != TrainMethod.FULL
    ):
        yield RuleViolation(
            ("method",),
            f"PRETRAIN only supports method 'full', got '{method}'",
            "pretrain_method",
            input=method,
        )


TRAIN_JOB_RULES: Final[tuple[Rule, ...]] = (
    model_family_rule,
    base_model_ref_rule,
    dataset_type_rule,
    pretrain_method_rule,
    _gpu_minimum_rule("resources", "gpus", "gpus_when_use_gpu"),
)
"""Every TrainJobSpec rule, in the order their violations are reported."""


def train_job_rule_violations(data: Spec) -> list[RuleViolation]:
    """Every TrainJobSpec rule broken by ``data`` (a spec as a plain mapping)."""
    return [violation for rule in TRAIN_JOB_RULES for violation in rule(data)]


# --- DeploymentSpec --------------------------------------------------------------------------


def serve_target_rule(data: Spec) -> Iterator[RuleViolation]:
    """serve_target must be the one the job type's model can serve (EMBEDDING -> RAG)."""
    target = data.get("serve_target")
    job_type = _job_type(data)
    if (
        isinstance(target, str)
        and job_type is not None
        and SERVE_TARGET_FOR_JOB[job_type] != target
    ):
        yield RuleViolation(
            ("serve_target",),
            f"Serve target '{target}' is not compatible with job_type '{job_type}'",
            "serve_target_compatible",
            input=target,
        )


def max_output_tokens_rule(data: Spec) -> Iterator[RuleViolation]:
    """Only embedding models may declare ``max_output_tokens: 0``: they return vectors, not
    tokens. For a generator, 0 would make every request return nothing."""
    value = _int(_get(data, "runtime", "max_output_tokens"))
    job_type = _job_type(data)
    if value is not None and value < 1 and job_type not in (None, JobType.EMBEDDING):
        yield RuleViolation(
            ("runtime", "max_output_tokens"),
            f"runtime.max_output_tokens must be >= 1 for job_type '{job_type}' "
            f"(0 is allowed only for EMBEDDING), got {value}",
            "max_output_tokens",
            input=value,
        )


def rollout_rule(data: Spec) -> Iterator[RuleViolation]:
    """A canary needs a traffic split; blue-green switches all traffic at once, so a split
    there would be silently ignored and is rejected instead."""
    strategy = _get(data, "rollout", "strategy")
    rollout = data.get("rollout")
    if not isinstance(rollout, Mapping):
        return
    split = rollout.get("traffic_split")
    loc = ("rollout", "traffic_split")
    if strategy == RolloutStrategy.CANARY and split is None:
        yield RuleViolation(
            loc,
            "rollout.traffic_split is required when rollout.strategy is 'canary'",
            "canary_traffic_split",
            input=split,
        )
    elif strategy == RolloutStrategy.BLUE_GREEN and split is not None:
        yield RuleViolation(
            loc,
            "rollout.traffic_split must not be set when rollout.strategy is 'blue-green' "
            "(blue-green switches all traffic at once)",
            "blue_green_traffic_split",
            input=split,
        )


def traffic_split_violations(data: Spec) -> list[RuleViolation]:
    """old + new must be exactly 100 (percentages of the endpoint's traffic). Locations are
    relative to the split itself; the DeploymentSpec reports them under rollout.traffic_split.
    """
    old, new = _int(data.get("old")), _int(data.get("new"))
    if old is None or new is None or old + new == 100:
        return []
    return [
        RuleViolation(
            (),
            f"traffic_split old + new must sum to 100 (got {old} + {new} = {old + new})",
            "traffic_split_sum",
            input={"old": old, "new": new},
        )
    ]


def traffic_split_rule(data: Spec) -> Iterator[RuleViolation]:
    """rollout.traffic_split must sum to 100 (see :func:`traffic_split_violations`)."""
    split = _get(data, "rollout", "traffic_split")
    if isinstance(split, Mapping):
        for violation in traffic_split_violations(split):
            yield violation.with_prefix(("rollout", "traffic_split"))


DEPLOYMENT_RULES: Final[tuple[Rule, ...]] = (
    model_family_rule,
    serve_target_rule,
    _gpu_minimum_rule("resources", "gpus", "gpus_when_use_gpu"),
    _gpu_minimum_rule("resources", "gpu_memory_gb", "gpu_memory_when_use_gpu"),
    max_output_tokens_rule,
    rollout_rule,
    traffic_split_rule,
)
"""Every DeploymentSpec rule, in the order their violations are reported."""


def deployment_rule_violations(data: Spec) -> list[RuleViolation]:
    """Every DeploymentSpec rule broken by ``data`` (a spec as a plain mapping)."""
    return [violation for rule in DEPLOYMENT_RULES for violation in rule(data)]
