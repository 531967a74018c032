"""Causal LM objectives on TRL's SFTTrainer: ``causal-lm`` (PRETRAIN), ``sft``, ``rag-qa``.

prepare_data already tokenized the rows (``input_ids``, plus ``completion_mask`` for sft and
rag-qa), so SFTTrainer takes them as they are: with ``completion_only_loss`` the loss covers
the response / answer tokens only; pretraining rows have no mask, so every token counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops_trainer.env import local_rank
from llmops_trainer.loading import load_causal_lm
from llmops_trainer.plan import TrainPlan, lora_config, quantization_config, training_arguments
from llmops_trainer.vocab import JobType, Method, Objective

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback


def load_policy(plan: TrainPlan) -> PreTrainedModel:
    """The model to train: full fine-tuning keeps fp32 master weights (mixed precision does
    the rest); lora freezes the base in the compute dtype; qlora loads it in 4-bit nf4;
    PRETRAIN builds the architecture with random weights."""
    import torch

    if plan.common.job_type is JobType.PRETRAIN:
        return load_causal_lm(plan.base, dtype=torch.float32, from_scratch=True)
    if plan.method is Method.FULL:
        return load_causal_lm(plan.base, dtype=torch.float32)
    if plan.method is Method.LORA:
        return load_causal_lm(plan.base, dtype=plan.compute.dtype())
    return load_causal_lm(
        plan.base,
        dtype=plan.compute.dtype(),
        quantization=quantization_config(plan),
        device_map={"": local_rank()},
    )


def build_sft_trainer(
    plan: TrainPlan,
    rows: list[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    callbacks: list[TrainerCallback],
) -> Any:
    """TRL's SFTTrainer over the pre-tokenized rows."""
    from datasets import Dataset  # type: ignore[import-untyped]
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    args = SFTConfig(
        **training_arguments(plan),
        max_length=plan.max_seq_len,
        completion_only_loss=plan.objective is not Objective.CAUSAL_LM,
        packing=False,
    )
    return SFTTrainer(
        model=load_policy(plan),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(plan.common.model_family, task_type="CAUSAL_LM")
        if plan.adapters
        else None,
        callbacks=callbacks,
    )
