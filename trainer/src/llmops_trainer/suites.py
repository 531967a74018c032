"""The evaluation suites: what evaluate measures on the held-out split.

* ``perplexity`` / ``generation`` / ``rag-qa``: perplexity of the trained causal LM, exp of the
  mean token loss over the eval rows (response / answer tokens only when the rows carry a
  ``completion_mask``: sft, rag-qa; every token for pretraining). Token-weighted over the
  whole split, not averaged per batch.
* ``preference``: DPO's implicit reward ``beta * (log pi(y|x) - log pi_ref(y|x))`` of chosen and
  rejected answers, pi = the trained model, pi_ref = the base model, as TRL's DPOTrainer
  computes it: ``preference_accuracy`` (share of pairs whose chosen answer gets the higher
  reward) and ``reward_margin`` (mean chosen - rejected), averaged over eval batches.
* ``retrieval``: sentence-transformers' InformationRetrievalEvaluator with the eval queries
  against the eval positives as the corpus (each query's own positive is the relevant one):
  accuracy@1/3/5/10, MRR@10, NDCG@10, MAP@100, cosine similarity.

Every function returns metric names without the ``eval_`` prefix evaluate adds.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

from llmops_trainer.locations import ModelSource


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(device: str) -> Any:
    """Full precision on CPUs (half precision is slow there); the saved dtype on GPUs."""
    import torch

    return torch.float32 if device == "cpu" else "auto"


def perplexity(
    model_source: ModelSource, rows: list[dict[str, Any]], *, batch_size: int, max_seq_len: int
) -> dict[str, float]:
    """Perplexity and mean token loss of the rows under the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    device = _device()
    tokenizer = AutoTokenizer.from_pretrained(model_source.name_or_path)
    model: Any = AutoModelForCausalLM.from_pretrained(
        model_source.name_or_path, dtype=_dtype(device)
    )
    model.to(device).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = DataCollatorForLanguageModeling(pad_token_id=int(pad or 0))
    examples = [_labelled(row, max_seq_len) for row in rows]
    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size])
            batch = {key: value.to(device) for key, value in batch.items()}
            counted = int((batch["labels"][:, 1:] != -100).sum())
            if counted == 0:
                continue
            output = model(**batch)
            loss_sum += float(output.loss) * counted
            tokens += counted
    if tokens == 0:
        raise ValueError("the eval split has no tokens to score (every row fully masked?)")
    loss = loss_sum / tokens
    return {"perplexity": math.exp(loss), "loss": loss, "tokens": float(tokens)}


def _labelled(row: dict[str, Any], max_seq_len: int) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (-100 outside the completion), cut to ``max_seq_len``."""
    ids = list(row["input_ids"])[:max_seq_len]
    mask = row.get("completion_mask")
    if mask is None:
        return {"input_ids": ids, "labels": list(ids)}
    labels = [i if m else -100 for i, m in zip(ids, mask, strict=False)]
    return {"input_ids": ids, "labels": labels}


def preference(
    model_source: ModelSource,
    reference: ModelSource,
    rows: list[dict[str, Any]],
    *,
    batch_size: int,
    max_seq_len: int,
    beta: float,
) -> dict[str, float]:
    """DPO preference accuracy and reward margin of the trained model against the base."""
    from datasets import Dataset  # type: ignore[import-untyped]
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    device = _device()
    tokenizer = AutoTokenizer.from_pretrained(model_source.name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(model_source.name_or_path, dtype=_dtype(device))
    ref = AutoModelForCausalLM.from_pretrained(
        reference.name_or_path, revision=reference.revision, dtype=_dtype(device)
    )
    dataset = Dataset.from_list(rows)
    with tempfile.TemporaryDirectory(prefix="llmops-eval-") as scratch:
        args = DPOConfig(
            output_dir=scratch,
            per_device_eval_batch_size=batch_size,
            per_device_train_batch_size=batch_size,
            max_length=max_seq_len,
            beta=beta,
            report_to="none",
            use_cpu=device == "cpu",
            bf16=False,
            fp16=False,
            activation_checkpointing=False,
            disable_tqdm=True,
        )
        trainer = DPOTrainer(
            model=policy,
            ref_model=ref,
            args=args,
            train_dataset=dataset,  # required by the constructor; never trained on
            eval_dataset=dataset,
            processing_class=tokenizer,
        )
        metrics = trainer.evaluate()
    return {
        "preference_accuracy": float(metrics["eval_rewards/accuracies"]),
        "reward_margin": float(metrics["eval_rewards/margins"]),
        "reward_chosen": float(metrics["eval_rewards/chosen"]),
        "reward_rejected": float(metrics["eval_rewards/rejected"]),
        "loss": float(metrics["eval_loss"]),
    }


def retrieval(
    model_source: ModelSource, rows: list[dict[str, Any]], *, batch_size: int, max_seq_len: int
) -> dict[str, float]:
    """Held-out retrieval quality of the embedding model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    model = SentenceTransformer(model_source.name_or_path, device=_device())
    model.max_seq_length = max_seq_len
    queries = {f"q{i}": row["anchor"] for i, row in enumerate(rows)}
    corpus = {f"d{i}": row["positive"] for i, row in enumerate(rows)}
    relevant = {f"q{i}": {f"d{i}"} for i in range(len(rows))}
    evaluator = InformationRetrievalEvaluator(
        queries=queries,
        corpus=corpus,
        relevant_docs=relevant,
        accuracy_at_k=[1, 3, 5, 10],
        precision_recall_at_k=[1, 10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[100],
        batch_size=batch_size,
        write_csv=False,
        name="retrieval",
    )
    results = evaluator(model)
    prefix = "retrieval_cosine_"
    out = {}
    for key, value in results.items():
        if key.startswith(prefix):
            name = key.removeprefix(prefix).replace("@", "_at_")
            out[name] = float(value)
    out["corpus_size"] = float(len(corpus))
    return out
