"""The trainer's vocabulary: the values its flags accept and how they relate.

These mirror ``llmops_shared.specs`` (job types, dataset types, the family whitelist) without
importing it: the trainer image carries only this package and its ML libraries. A unit test
(tests/unit/trainer/test_vocab.py) fails when the two drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class JobType(StrEnum):
    """What the pipeline trains (``TrainJobSpec.job_type``)."""

    PRETRAIN = "PRETRAIN"
    SFT = "SFT"
    RAG_TUNING = "RAG_TUNING"
    RLHF = "RLHF"
    EMBEDDING = "EMBEDDING"


class DatasetType(StrEnum):
    """Record layouts of datasets; each job type trains on exactly one."""

    PRETRAIN_CORPUS = "pretrain_corpus"
    SFT_PAIR = "sft_pair"
    RAG_QA = "rag_qa"
    RLHF_PAIR = "rlhf_pair"
    EMBEDDING_PAIR = "embedding_pair"


class ModelFamily(StrEnum):
    """The whitelisted model families (``llmops_shared.specs.supported_families()``)."""

    LLAMA = "llama"
    MISTRAL = "mistral"
    GEMMA = "gemma"
    BERT = "bert"


class Method(StrEnum):
    """How weights are updated."""

    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"


class Objective(StrEnum):
    """The training objective train runs (one per job type, see ``OBJECTIVE_FOR_JOB``)."""

    CAUSAL_LM = "causal-lm"
    SFT = "sft"
    RAG_QA = "rag-qa"
    DPO = "dpo"
    CONTRASTIVE = "contrastive"


class Precision(StrEnum):
    """Requested training precision; fp16/bf16 only take effect on a CUDA device."""

    FP16 = "fp16"
    BF16 = "bf16"
    FP32 = "fp32"


class SaveFormat(StrEnum):
    """``hf``: ``save_pretrained`` as transformers shards it; ``safetensors``: one file."""

    HF = "hf"
    SAFETENSORS = "safetensors"


class Quantization(StrEnum):
    """Base-weight quantization of qlora (bitsandbytes 4-bit NormalFloat)."""

    NF4 = "nf4"


class Suite(StrEnum):
    """Evaluation suites of the evaluate stage."""

    PERPLEXITY = "perplexity"
    GENERATION = "generation"
    RAG_QA = "rag-qa"
    PREFERENCE = "preference"
    RETRIEVAL = "retrieval"


class DatasetStore(StrEnum):
    """Where a pinned dataset version's content-addressed objects live."""

    DVC = "dvc"
    BUILTIN = "builtin"


DATASET_TYPE_FOR_JOB: Final = MappingProxyType(
    {
        JobType.PRETRAIN: DatasetType.PRETRAIN_CORPUS,
        JobType.SFT: DatasetType.SFT_PAIR,
        JobType.RAG_TUNING: DatasetType.RAG_QA,
        JobType.RLHF: DatasetType.RLHF_PAIR,
        JobType.EMBEDDING: DatasetType.EMBEDDING_PAIR,
    }
)
"""The one dataset type each job type trains on."""

OBJECTIVE_FOR_JOB: Final = MappingProxyType(
    {
        JobType.PRETRAIN: Objective.CAUSAL_LM,
        JobType.SFT: Objective.SFT,
        JobType.RAG_TUNING: Objective.RAG_QA,
        JobType.RLHF: Objective.DPO,
        JobType.EMBEDDING: Objective.CONTRASTIVE,
    }
)
"""The objective each job type trains with (the workflow renders the same table)."""

SUITES_FOR_JOB: Final = MappingProxyType(
    {
        JobType.PRETRAIN: frozenset({Suite.PERPLEXITY}),
        JobType.SFT: frozenset({Suite.PERPLEXITY, Suite.GENERATION}),
        JobType.RAG_TUNING: frozenset({Suite.PERPLEXITY, Suite.RAG_QA}),
        JobType.RLHF: frozenset({Suite.PREFERENCE}),
        JobType.EMBEDDING: frozenset({Suite.RETRIEVAL}),
    }
)
"""Which evaluation suites make sense for a job type's model and eval split."""

ENCODER_FAMILIES: Final = frozenset({ModelFamily.BERT})
"""Families that cannot generate text: they train EMBEDDING only."""


def family_supports(family: ModelFamily, job_type: JobType) -> bool:
    """Whether ``family`` may be trained for ``job_type`` (encoders embed, never generate)."""
    return job_type is JobType.EMBEDDING or family not in ENCODER_FAMILIES
