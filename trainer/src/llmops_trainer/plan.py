"""What one train run is: its flags resolved into a plan, and the TrainingArguments every
objective shares.

The objective modules (causal, preference, contrastive) build their trainer from a
:class:`TrainPlan`; keeping the shared arguments here means checkpointing, logging and
precision behave the same whichever library trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from llmops_trainer.cli import Common
from llmops_trainer.hardware import Compute
from llmops_trainer.locations import ModelSource
from llmops_trainer.tracking import flat_params
from llmops_trainer.vocab import Method, ModelFamily, Objective, SaveFormat

SEED: Final = 42
SAVE_TOTAL_LIMIT: Final = 2
"""Checkpoints kept: the newest, and the one before in case the newest is being written."""

LORA_RANK: Final = 16
LORA_ALPHA: Final = 32
LORA_DROPOUT: Final = 0.05
LORA_TARGETS: Final = MappingProxyType(
    {
        ModelFamily.LLAMA: ("q_proj", "k_proj", "v_proj", "o_proj"),
        ModelFamily.MISTRAL: ("q_proj", "k_proj", "v_proj", "o_proj"),
        ModelFamily.GEMMA: ("q_proj", "k_proj", "v_proj", "o_proj"),
        ModelFamily.BERT: ("query", "key", "value"),
    }
)
"""The attention projections LoRA adapts, per family."""


@dataclass(frozen=True)
class TrainPlan:
    """A train run, resolved: flags, base model, compute and checkpointing."""

    common: Common
    method: Method
    objective: Objective
    base: ModelSource
    compute: Compute
    lr: float
    batch_size: int
    num_epochs: int
    max_seq_len: int
    save_format: SaveFormat
    artifact_name: str
    checkpoint_dir: Path
    checkpoint_steps: int
    logging_steps: int
    world_size: int = 1

    @property
    def adapters(self) -> bool:
        """Whether the run trains LoRA adapters (lora, qlora)."""
        return self.method is not Method.FULL


def total_steps(train_rows: int, batch_size: int, num_epochs: int, world_size: int) -> int:
    """Optimizer steps of a run (no gradient accumulation): batches per epoch x epochs."""
    per_epoch = math.ceil(train_rows / (batch_size * max(world_size, 1)))
    return max(per_epoch * num_epochs, 1)


MIN_CHECKPOINT_STEPS = 50
"""A checkpoint writes the whole model and optimizer state: on a short run, saving every few
steps costs more than running it again (measured: a 16-step tiny run spent most of its time
saving 16 checkpoints), so a run resumes from a checkpoint at most every 50 steps."""


def default_checkpoint_steps(steps: int) -> int:
    """About a tenth of the run between checkpoints, and at least ``MIN_CHECKPOINT_STEPS``."""
    return max(MIN_CHECKPOINT_STEPS, steps // 10)


def lora_config(family: ModelFamily, *, task_type: str) -> Any:
    """PEFT's LoraConfig on the family's attention projections (r 16, alpha 32, dropout 0.05)."""
    from peft import LoraConfig

    return LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_ALPHA,
        lora_dropout=LORA_DROPOUT,
        target_modules=list(LORA_TARGETS[family]),
        task_type=task_type,
    )


def quantization_config(plan: TrainPlan) -> Any:
    """4-bit NormalFloat (bitsandbytes) for qlora's frozen base weights."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=plan.compute.dtype(),
    )


def training_arguments(plan: TrainPlan) -> dict[str, Any]:
    """TrainingArguments shared by every objective (TRL and sentence-transformers configs
    extend transformers' ``TrainingArguments``)."""
    return {
        "output_dir": str(plan.checkpoint_dir),
        "per_device_train_batch_size": plan.batch_size,
        "per_device_eval_batch_size": plan.batch_size,
        "num_train_epochs": plan.num_epochs,
        "learning_rate": plan.lr,
        "seed": SEED,
        "logging_strategy": "steps",
        "logging_steps": plan.logging_steps,
        "save_strategy": "steps",
        "save_steps": plan.checkpoint_steps,
        "save_total_limit": SAVE_TOTAL_LIMIT,
        "eval_strategy": "no",
        # MLflow is logged by our own callback to the job's existing run; transformers'
        # integrations would start (and end) runs of their own.
        "report_to": "none",
        "bf16": plan.compute.bf16,
        "fp16": plan.compute.fp16,
        "use_cpu": not plan.compute.cuda,
        # Trades compute for memory: worth it on GPUs, only slower on CPUs.
        "activation_checkpointing": plan.compute.cuda,
        "include_num_input_tokens_seen": "non_padding",
        "disable_tqdm": True,
        "ddp_find_unused_parameters": False,
        "dataloader_num_workers": 0,
    }


def run_params(plan: TrainPlan, total: int) -> dict[str, str]:
    """The run's ``trainer.*`` params (the spec's own params are logged by the tracking
    service; these say what actually ran, e.g. fp32 after a CPU fallback)."""
    values: dict[str, Any] = {
        "method": plan.method.value,
        "objective": plan.objective.value,
        "lr": plan.lr,
        "batch_size": plan.batch_size,
        "num_epochs": plan.num_epochs,
        "max_seq_len": plan.max_seq_len,
        "precision_requested": plan.compute.requested.value,
        "precision": plan.compute.precision.value,
        "device": plan.compute.device,
        "world_size": plan.world_size,
        "total_steps": total,
        "checkpoint_steps": plan.checkpoint_steps,
        "logging_steps": plan.logging_steps,
        "save_format": plan.save_format.value,
        "base_model": plan.base.uri,
        "artifact_name": plan.artifact_name,
    }
    return flat_params("trainer", values)
