"""The closed vocabularies of the specs and the job-type compatibility tables.

They live apart from the models so that rule functions, image selection and other services
(registry, serving, workflow) can import them without pulling in the pydantic models.
Every enum is a ``StrEnum``: members compare equal to their wire strings, so rules work the same
on validated models and on raw stored JSON.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class JobType(StrEnum):
    """What kind of training a TrainJobSpec asks for (and which a deployed model came from)."""

    PRETRAIN = "PRETRAIN"
    SFT = "SFT"
    RAG_TUNING = "RAG_TUNING"
    RLHF = "RLHF"
    EMBEDDING = "EMBEDDING"


class ServeTarget(StrEnum):
    """What a deployment serves: text generation, or the retrieval/answer side of RAG."""

    GENERATION = "GENERATION"
    RAG = "RAG"


class DatasetType(StrEnum):
    """Dataset record layouts; each job type trains on exactly one of them.

    ``embedding_pair`` is ours (the integration quickstart's TrainJobSpec stops at
    ``rlhf_pair``): records of ``{"query", "positive"[, "negative"]}`` used for contrastive
    embedding training.
    """

    PRETRAIN_CORPUS = "pretrain_corpus"
    SFT_PAIR = "sft_pair"
    RAG_QA = "rag_qa"
    RLHF_PAIR = "rlhf_pair"
    EMBEDDING_PAIR = "embedding_pair"


class TrainMethod(StrEnum):
    """How weights are updated: all of them, or low-rank adapters (optionally quantized)."""

    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"


class Precision(StrEnum):
    """Mixed-precision mode of training."""

    FP16 = "fp16"
    BF16 = "bf16"


class SaveFormat(StrEnum):
    """Format of the trained artifact."""

    HF = "hf"
    SAFETENSORS = "safetensors"


class RolloutStrategy(StrEnum):
    """How a new model version replaces the old one behind an endpoint."""

    BLUE_GREEN = "blue-green"
    CANARY = "canary"


DATASET_TYPE_FOR_JOB: Final[MappingProxyType[JobType, DatasetType]] = MappingProxyType(
    {
        JobType.PRETRAIN: DatasetType.PRETRAIN_CORPUS,
        JobType.SFT: DatasetType.SFT_PAIR,
        JobType.RAG_TUNING: DatasetType.RAG_QA,
        JobType.RLHF: DatasetType.RLHF_PAIR,
        JobType.EMBEDDING: DatasetType.EMBEDDING_PAIR,
    }
)
"""The one dataset type each job type accepts (the integration quickstart's TrainJobSpec rules,
plus EMBEDDING)."""

SERVE_TARGET_FOR_JOB: Final[MappingProxyType[JobType, ServeTarget]] = MappingProxyType(
    {
        JobType.PRETRAIN: ServeTarget.GENERATION,
        JobType.SFT: ServeTarget.GENERATION,
        JobType.RLHF: ServeTarget.GENERATION,
        JobType.RAG_TUNING: ServeTarget.RAG,
        # Embedding models cannot generate text; they serve the retrieval side of RAG.
        JobType.EMBEDDING: ServeTarget.RAG,
    }
)
"""The one serve target each job type's model can be deployed as (the integration quickstart's
DeploymentSpec rules, extended to PRETRAIN and EMBEDDING)."""
