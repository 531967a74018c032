"""The ``contrastive`` objective (EMBEDDING) on sentence-transformers.

SentenceTransformerTrainer with MultipleNegativesRankingLoss over (anchor=query, positive
[, negative]) rows: every other positive in the batch is a negative too, so larger batches
train better embeddings. The base is loaded with ``SentenceTransformer``: a sentence-
transformers directory keeps its modules; a plain transformers model (e.g. a ``BertModel``
directory) gets mean pooling. With lora/qlora the transformer inside is wrapped by PEFT
(feature extraction) and merged back before saving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer

from llmops_trainer.env import local_rank
from llmops_trainer.locations import ModelSource
from llmops_trainer.plan import TrainPlan, lora_config, quantization_config, training_arguments
from llmops_trainer.vocab import Method

if TYPE_CHECKING:
    from transformers import TrainerCallback


class TokenCountingTrainer(SentenceTransformerTrainer):
    """Counts the non-padding tokens of every input column for ``tokens_per_second``.

    transformers' Trainer counts only the model's ``main_input_name`` column, which a
    sentence-transformers batch (``anchor_input_ids``, ``positive_input_ids``, ...) does not
    have. This overrides that one (private) hook; the trainer tests assert that EMBEDDING runs
    report tokens, so a library upgrade that renames it is noticed."""

    def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
        import torch

        if self.args.include_num_input_tokens_seen == "no":
            return
        masks = [value for key, value in inputs.items() if key.endswith("attention_mask")]
        count = sum(int(mask.sum()) for mask in masks)
        tokens = torch.as_tensor(count, device=self.args.device, dtype=torch.int64)
        self.state.num_input_tokens_seen += int(self.accelerator.gather(tokens).sum().item())


def load_sentence_transformer(
    source: ModelSource, *, device: str, max_seq_len: int | None, model_kwargs: dict[str, Any]
) -> SentenceTransformer:
    """The base (or a trained) embedding model."""
    model = SentenceTransformer(
        source.name_or_path, revision=source.revision, device=device, model_kwargs=model_kwargs
    )
    if max_seq_len is not None:
        model.max_seq_length = max_seq_len
    return model


def build_contrastive_trainer(
    plan: TrainPlan, rows: list[dict[str, Any]], callbacks: list[TrainerCallback]
) -> Any:
    """SentenceTransformerTrainer with MultipleNegativesRankingLoss."""
    from datasets import Dataset  # type: ignore[import-untyped]
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model_kwargs: dict[str, Any] = {}
    if plan.method is Method.QLORA:
        model_kwargs = {
            "quantization_config": quantization_config(plan),
            "device_map": {"": local_rank()},
            "dtype": plan.compute.dtype(),
        }
    elif plan.method is Method.LORA:
        model_kwargs = {"dtype": plan.compute.dtype()}
    model = load_sentence_transformer(
        plan.base,
        device=plan.compute.device,
        max_seq_len=plan.max_seq_len,
        model_kwargs=model_kwargs,
    )
    if plan.adapters:
        from peft import get_peft_model

        transformer: Any = model[0]
        transformer.model = get_peft_model(
            transformer.model, lora_config(plan.common.model_family, task_type="FEATURE_EXTRACTION")
        )
    args = SentenceTransformerTrainingArguments(**training_arguments(plan))
    columns = ["anchor", "positive", "negative"]
    dataset = Dataset.from_list(rows).select_columns([c for c in columns if c in rows[0]])
    return TokenCountingTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=callbacks,
    )
