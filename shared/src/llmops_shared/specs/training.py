"""TrainJobSpec: what to train, on what data, how, and on which hardware (the integration
quickstart's TrainJobSpec structure and rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, model_validator

from llmops_shared.specs.base import SpecModel, validate_with_rules
from llmops_shared.specs.families import supported_families
from llmops_shared.specs.rules import train_job_rule_violations
from llmops_shared.specs.violations import RuleViolation, violations_from_validation_error
from llmops_shared.specs.vocab import DatasetType, JobType, Precision, SaveFormat, TrainMethod
from llmops_shared.uris import NoCredentials


class DatasetRef(SpecModel):
    """A pinned dataset version to train on."""

    name: str = Field(min_length=1, description="Dataset name in the catalog.")
    version: str = Field(min_length=1, description="Dataset version (a DVC tag in versioning).")
    type: str = Field(
        description="Record layout; must be the one the job_type trains on "
        "(PRETRAIN: pretrain_corpus, SFT: sft_pair, RAG_TUNING: rag_qa, RLHF: rlhf_pair, "
        "EMBEDDING: embedding_pair = query/positive[/negative] pairs for contrastive training).",
        json_schema_extra={"enum": [t.value for t in DatasetType]},
    )
    storage_uri: Annotated[str, NoCredentials] = Field(
        min_length=1, description="Where the dataset version lives, e.g. s3://bucket/name/v1."
    )


class Hyperparams(SpecModel):
    """Optimiser and sequence settings."""

    lr: float = Field(gt=0, description="Learning rate; > 0.")
    batch_size: int = Field(ge=1, description="Per-device batch size; >= 1.")
    num_epochs: int = Field(ge=1, description="Passes over the dataset; >= 1.")
    max_seq_len: int = Field(
        ge=1,
        description="Tokens per training sequence; >= 1 and <= the base model's "
        "max_position_embeddings (checked against the catalog).",
    )
    precision: Precision = Field(description="Mixed-precision mode: fp16 or bf16.")


class TrainResources(SpecModel):
    """Hardware requested for the training job."""

    gpus: int = Field(ge=0, description="GPUs per node; >= 1 when use_gpu is true.")
    gpu_type: str | None = Field(
        default=None, description="GPU model to schedule on (e.g. A100); null for any."
    )
    nodes: int = Field(default=1, ge=1, description="Number of nodes; >= 1.")


class Output(SpecModel):
    """The trained artifact."""

    artifact_name: str = Field(
        min_length=1, description="Name of the trained model artifact (becomes a model_ref)."
    )
    save_format: SaveFormat = Field(description="Artifact format: hf or safetensors.")


class TrainJobSpec(SpecModel):
    """A training job request (the integration quickstart's TrainJobSpec structure).

    Field-level bounds are pydantic constraints; the cross-field rules (family whitelist,
    dataset type, base model, method, GPU count) are in :mod:`llmops_shared.specs.rules` and are
    all reported together, each at its own ``loc`` with error type ``spec_rule``.
    """

    job_type: JobType = Field(description="Kind of training.")
    model_family: str = Field(
        description="Model family; must be on the whitelist (bert only for EMBEDDING).",
        json_schema_extra={"enum": list(supported_families())},
    )
    base_model_ref: str | None = Field(
        default=None,
        min_length=1,
        description="Catalog model to start from: null for PRETRAIN, required otherwise.",
    )
    dataset_ref: DatasetRef = Field(description="Dataset version to train on.")
    hyperparams: Hyperparams = Field(description="Training hyperparameters.")
    method: TrainMethod = Field(description="full, lora or qlora; PRETRAIN allows only full.")
    resources: TrainResources = Field(description="Hardware request.")
    output: Output = Field(description="Trained artifact.")
    use_gpu: bool = Field(
        description="Train on GPUs; when the cluster has none, the CPU image is used instead."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> TrainJobSpec:
        return validate_with_rules(cls, data, handler, train_job_rule_violations)


def train_job_spec_violations(spec: TrainJobSpec | Mapping[str, Any]) -> list[RuleViolation]:
    """Everything wrong with ``spec`` under the *current* rules and field constraints, as a flat
    list (empty when valid). Accepts stored JSON or a model built earlier, possibly under older
    rules, which is why a model is re-validated from its dump rather than trusted."""
    data = spec.model_dump(mode="json") if isinstance(spec, TrainJobSpec) else spec
    try:
        TrainJobSpec.model_validate(data)
    except ValidationError as exc:
        return violations_from_validation_error(exc)
    return []
