"""TrainJobSpec and DeploymentSpec, their rules, and container image selection.

The models validate every schema-level rule (FastAPI turns the errors into a 422); the
``check_*`` functions add the rules that need catalog facts. See ``docs/specs.md``.
"""

from llmops_shared.specs.catalog_rules import (
    BaseModelFacts,
    DatasetFacts,
    ModelFacts,
    check_deployment_against_model,
    check_train_job_against_catalog,
)
from llmops_shared.specs.deployment import (
    DeploymentSpec,
    Rollout,
    Runtime,
    ServeResources,
    TrafficSplit,
    deployment_spec_violations,
)
from llmops_shared.specs.families import (
    MODEL_FAMILIES,
    ModelFamily,
    family_for_architecture,
    family_for_architectures,
    get_family,
    supported_families,
)
from llmops_shared.specs.images import (
    Device,
    DeviceImages,
    ImageChoice,
    ImageTable,
    default_train_image,
    select_serve_image,
    select_train_image,
)
from llmops_shared.specs.rules import (
    deployment_rule_violations,
    traffic_split_violations,
    train_job_rule_violations,
)
from llmops_shared.specs.training import (
    DatasetRef,
    Hyperparams,
    Output,
    TrainJobSpec,
    TrainResources,
    train_job_spec_violations,
)
from llmops_shared.specs.violations import (
    SPEC_RULE_ERROR_TYPE,
    RuleViolation,
    violations_from_validation_error,
    violations_to_validation_error,
)
from llmops_shared.specs.vocab import (
    DATASET_TYPE_FOR_JOB,
    SERVE_TARGET_FOR_JOB,
    DatasetType,
    JobType,
    Precision,
    RolloutStrategy,
    SaveFormat,
    ServeTarget,
    TrainMethod,
)

__all__ = [
    "DATASET_TYPE_FOR_JOB",
    "MODEL_FAMILIES",
    "SERVE_TARGET_FOR_JOB",
    "SPEC_RULE_ERROR_TYPE",
    "BaseModelFacts",
    "DatasetFacts",
    "DatasetRef",
    "DatasetType",
    "DeploymentSpec",
    "Device",
    "DeviceImages",
    "Hyperparams",
    "ImageChoice",
    "ImageTable",
    "JobType",
    "ModelFacts",
    "ModelFamily",
    "Output",
    "Precision",
    "Rollout",
    "RolloutStrategy",
    "RuleViolation",
    "Runtime",
    "SaveFormat",
    "ServeResources",
    "ServeTarget",
    "TrafficSplit",
    "TrainJobSpec",
    "TrainMethod",
    "TrainResources",
    "check_deployment_against_model",
    "check_train_job_against_catalog",
    "default_train_image",
    "deployment_rule_violations",
    "deployment_spec_violations",
    "family_for_architecture",
    "family_for_architectures",
    "get_family",
    "select_serve_image",
    "select_train_image",
    "supported_families",
    "traffic_split_violations",
    "train_job_rule_violations",
    "train_job_spec_violations",
    "violations_from_validation_error",
    "violations_to_validation_error",
]
