"""Rules that need catalog facts, which the spec alone cannot know.

The gateway looks the facts up (base model, dataset, trained model) and calls these; keeping
them pure (facts in, violations out) keeps the catalog client out of the shared package and
lets the stored-record validation script re-run them with facts from its own lookups.
Locations are relative to the spec, as in the schema-level rules, so the gateway can report
them under the same body path (see ``violations_to_validation_error``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmops_shared.specs.deployment import DeploymentSpec
from llmops_shared.specs.training import TrainJobSpec
from llmops_shared.specs.violations import RuleViolation
from llmops_shared.specs.vocab import DATASET_TYPE_FOR_JOB, JobType


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the catalog knows about a model (a base model, or a trained one to deploy).

    ``family`` is None when the architecture is not on the whitelist; ``max_position_embeddings``
    is None when the model's config does not say; ``job_type`` is the training job's, for
    trained models.
    """

    name: str
    family: str | None
    max_position_embeddings: int | None
    job_type: JobType | None = None


BaseModelFacts = ModelFacts
"""A base model for training is described by the same facts as any catalog model."""


@dataclass(frozen=True, slots=True)
class DatasetFacts:
    """What the catalog knows about a dataset: its record type (None when unrecorded) and the
    versions that exist. A dataset that does not exist is ``DatasetFacts(name, None)``."""

    name: str
    type: str | None
    versions: frozenset[str] = field(default_factory=frozenset)


def check_train_job_against_catalog(
    spec: TrainJobSpec,
    base_model: BaseModelFacts | None,
    dataset: DatasetFacts | None = None,
) -> list[RuleViolation]:
    """Violations of the catalog rules for a training job.

    ``base_model`` is the catalog entry for ``spec.base_model_ref`` (None: not found; ignored
    for PRETRAIN, which has no base model). ``dataset`` is optional: None skips the dataset
    checks, for callers that have not looked it up.
    """
    violations: list[RuleViolation] = []
    if spec.base_model_ref is not None:
        violations += _base_model_violations(spec, spec.base_model_ref, base_model)
    if dataset is not None:
        violations += _dataset_violations(spec, dataset)
    return violations


def _base_model_violations(
    spec: TrainJobSpec, ref: str, base_model: BaseModelFacts | None
) -> list[RuleViolation]:
    if base_model is None:
        return [
            RuleViolation(
                ("base_model_ref",),
                f"Base model '{ref}' was not found in the catalog",
                "base_model_exists",
                input=ref,
            )
        ]
    violations = []
    if base_model.family is None:
        violations.append(
            RuleViolation(
                ("base_model_ref",),
                f"Base model '{ref}' is not of a supported model family",
                "base_model_family_supported",
                input=ref,
            )
        )
    elif base_model.family != spec.model_family:
        violations.append(
            RuleViolation(
                ("model_family",),
                f"model_family '{spec.model_family}' does not match base model '{ref}' "
                f"(family '{base_model.family}')",
                "base_model_family_match",
                input=spec.model_family,
            )
        )
    mpe = base_model.max_position_embeddings
    max_seq_len = spec.hyperparams.max_seq_len
    if mpe is not None and max_seq_len > mpe:
        violations.append(
            RuleViolation(
                ("hyperparams", "max_seq_len"),
                f"{spec.job_type} max_seq_len must be <= base_model.max_position_embeddings "
                f"({max_seq_len} > {mpe})",
                "max_seq_len_fits_base_model",
                input=max_seq_len,
            )
        )
    return violations


def _dataset_violations(spec: TrainJobSpec, dataset: DatasetFacts) -> list[RuleViolation]:
    ref = spec.dataset_ref
    if ref.version not in dataset.versions:
        return [
            RuleViolation(
                ("dataset_ref", "version"),
                f"Dataset '{ref.name}' version '{ref.version}' was not found in the catalog",
                "dataset_version_exists",
                input=ref.version,
            )
        ]
    if dataset.type is not None and dataset.type != DATASET_TYPE_FOR_JOB[spec.job_type]:
        # The catalog's type is the truth; the spec's own type was checked by the schema rules.
        return [
            RuleViolation(
                ("dataset_ref", "type"),
                f"Dataset type '{dataset.type}' is not compatible with job_type '{spec.job_type}'",
                "catalog_dataset_type_compatible",
                input=dataset.type,
            )
        ]
    return []


def check_deployment_against_model(
    spec: DeploymentSpec, model: ModelFacts | None
) -> list[RuleViolation]:
    """Violations of the catalog rules for a deployment of ``model`` (None: not found).

    The model must exist; the deployment's family and job type must be the training job's
    (a mismatch would select the wrong serving runtime); and a request's input plus output
    tokens must fit the model's context window.
    """
    if model is None:
        return [
            RuleViolation(
                ("model_ref",),
                f"Model '{spec.model_ref}' was not found in the catalog",
                "model_exists",
                input=spec.model_ref,
            )
        ]
    violations = []
    if model.family is not None and model.family != spec.model_family:
        violations.append(
            RuleViolation(
                ("model_family",),
                "Deployment model_family must match the training job's "
                f"('{spec.model_family}' != '{model.family}')",
                "deployment_family_match",
                input=spec.model_family,
            )
        )
    if model.job_type is not None and model.job_type != spec.job_type:
        violations.append(
            RuleViolation(
                ("job_type",),
                "Deployment job_type must match the training job's "
                f"('{spec.job_type}' != '{model.job_type}')",
                "deployment_job_type_match",
                input=str(spec.job_type),
            )
        )
    mpe = model.max_position_embeddings
    tokens_in, tokens_out = spec.runtime.max_input_tokens, spec.runtime.max_output_tokens
    if mpe is not None and tokens_in + tokens_out > mpe:
        violations.append(
            RuleViolation(
                ("runtime", "max_input_tokens"),
                "runtime.max_input_tokens + runtime.max_output_tokens must be <= "
                f"model.max_position_embeddings ({tokens_in} + {tokens_out} = "
                f"{tokens_in + tokens_out} > {mpe})",
                "tokens_fit_model",
                input=tokens_in,
            )
        )
    return violations
