"""Saving the trained model as a Hugging Face directory, adapters merged.

* ``hf``: ``save_pretrained`` with safetensors shards of at most 5 GB (the Hub's layout:
  ``model-0000N-of-0000M.safetensors`` + index once a model is large enough to shard);
* ``safetensors``: one unsharded ``model.safetensors``.

Both carry ``config.json`` and the tokenizer. LoRA/QLoRA adapters are merged into the base
weights (qlora: into a full-precision reload of the base, never into 4-bit weights), so the
directory loads with ``AutoModelForCausalLM.from_pretrained`` and KServe's huggingface server
without PEFT; the adapter itself is kept under ``adapter/``. EMBEDDING saves a
sentence-transformers directory. Weights are saved in the training precision (bf16/fp16 on a
GPU, fp32 on a CPU). ``llmops-model.json`` records what was trained; it is written last and
evaluate/register refuse a directory without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final

from llmops_trainer.locations import MODEL_MARKER
from llmops_trainer.plan import TrainPlan
from llmops_trainer.vocab import Method, Objective, SaveFormat

_log = logging.getLogger(__name__)

ADAPTER_DIR: Final = "adapter"
SHARD_SIZE: Final = {SaveFormat.HF: "5GB", SaveFormat.SAFETENSORS: "100000GB"}


def save_trained(trainer: Any, plan: TrainPlan, staging: Path, facts: dict[str, Any]) -> None:
    """Write the trained model (merged), its tokenizer and the marker into ``staging``."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if plan.objective is Objective.CONTRASTIVE:
        _save_sentence_transformer(model, plan, staging)
    else:
        _save_causal(model, trainer.processing_class, plan, staging)
    marker = {
        **facts,
        "job_type": plan.common.job_type.value,
        "model_family": plan.common.model_family.value,
        "base_model_ref": plan.common.base_model_ref,
        "base_model_uri": plan.base.uri,
        "objective": plan.objective.value,
        "method": plan.method.value,
        "save_format": plan.save_format.value,
        "precision": plan.compute.precision.value,
        "artifact_name": plan.artifact_name,
        "adapter": ADAPTER_DIR if plan.adapters else None,
        "library": "sentence-transformers"
        if plan.objective is Objective.CONTRASTIVE
        else "transformers",
    }
    (staging / MODEL_MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _save_causal(model: Any, tokenizer: Any, plan: TrainPlan, staging: Path) -> None:
    if plan.adapters:
        model.save_pretrained(staging / ADAPTER_DIR)
        model = _merged(model, plan, staging / ADAPTER_DIR)
    model = model.to(plan.compute.dtype())
    model.save_pretrained(staging, max_shard_size=SHARD_SIZE[plan.save_format])
    tokenizer.save_pretrained(staging)


def _merged(model: Any, plan: TrainPlan, adapter: Path) -> Any:
    """The base with the adapter merged in: in place for lora; for qlora into the base
    reloaded unquantized (merging into 4-bit weights would save a quantized model)."""
    if plan.method is Method.QLORA:
        from peft import PeftModel

        from llmops_trainer.loading import load_causal_lm

        _log.info("merging the qlora adapter into the base reloaded in %s", plan.compute.precision)
        base = load_causal_lm(plan.base, dtype=plan.compute.dtype())
        return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    return model.merge_and_unload()


def _save_sentence_transformer(model: Any, plan: TrainPlan, staging: Path) -> None:
    transformer = model[0]
    if plan.adapters:
        transformer.model.save_pretrained(staging / ADAPTER_DIR)
        if plan.method is Method.QLORA:
            from peft import PeftModel
            from transformers import AutoModel

            base = AutoModel.from_pretrained(
                plan.base.name_or_path, revision=plan.base.revision, dtype=plan.compute.dtype()
            )
            merged = PeftModel.from_pretrained(base, str(staging / ADAPTER_DIR))
            transformer.model = merged.merge_and_unload().to(model.device)
        else:
            transformer.model = transformer.model.merge_and_unload()
    model.save_pretrained(str(staging))
