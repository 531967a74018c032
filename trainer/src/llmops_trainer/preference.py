"""The ``dpo`` objective (RLHF on preference pairs) on TRL's DPOTrainer.

rlhf_pair records are (prompt, chosen, rejected) preference pairs, which DPO learns from
directly: no reward model. The reference policy is the base model: with lora/qlora, TRL
disables the adapter to get it (no second copy in memory); with full fine-tuning a frozen copy
of the base is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from llmops_trainer.causal import load_policy
from llmops_trainer.loading import load_causal_lm
from llmops_trainer.plan import TrainPlan, lora_config, training_arguments

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, TrainerCallback

BETA: Final = 0.1
"""DPO's beta (deviation from the reference); evaluate's implicit rewards use the same."""


def build_dpo_trainer(
    plan: TrainPlan,
    rows: list[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    callbacks: list[TrainerCallback],
) -> Any:
    """TRL's DPOTrainer over the preference rows (TRL tokenizes them)."""
    from datasets import Dataset  # type: ignore[import-untyped]
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    reference = None if plan.adapters else load_causal_lm(plan.base, dtype=plan.compute.dtype())
    args = DPOConfig(**training_arguments(plan), max_length=plan.max_seq_len, beta=BETA)
    return DPOTrainer(
        model=load_policy(plan),
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(plan.common.model_family, task_type="CAUSAL_LM")
        if plan.adapters
        else None,
        callbacks=callbacks,
    )
