"""Running a planned train: build the objective's trainer, resume, train, save, publish.

Kept apart from the CLI module so that refusals (bad flags, qlora without CUDA) are decided
before transformers, TRL or sentence-transformers are even imported.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from llmops_trainer import storage
from llmops_trainer.callbacks import MlflowProgress
from llmops_trainer.checkpoints import (
    CheckpointPlace,
    CheckpointUpload,
    download_newest,
    last_complete,
    step_of,
)
from llmops_trainer.env import StageEnv, world_rank
from llmops_trainer.loading import load_tokenizer
from llmops_trainer.locations import MODEL_MARKER
from llmops_trainer.plan import TrainPlan, run_params
from llmops_trainer.saving import save_trained
from llmops_trainer.tracking import RunTracker
from llmops_trainer.vocab import Objective

_log = logging.getLogger(__name__)


def build_trainer(plan: TrainPlan, rows: list[dict[str, Any]], callbacks: list[Any]) -> Any:
    """The library trainer of the plan's objective."""
    if plan.objective is Objective.CONTRASTIVE:
        from llmops_trainer.contrastive import build_contrastive_trainer

        return build_contrastive_trainer(plan, rows, callbacks)
    tokenizer = load_tokenizer(plan.base)
    if plan.objective is Objective.DPO:
        from llmops_trainer.preference import build_dpo_trainer

        return build_dpo_trainer(plan, rows, tokenizer, callbacks)
    from llmops_trainer.causal import build_sft_trainer

    return build_sft_trainer(plan, rows, tokenizer, callbacks)


def run(
    plan: TrainPlan,
    rows: list[dict[str, Any]],
    place: CheckpointPlace,
    tracker: RunTracker | None,
    env: StageEnv,
    *,
    output_uri: str,
    total_steps: int,
) -> None:
    """Train the plan and publish the model at ``output_uri`` (rank 0 saves)."""
    progress = MlflowProgress(tracker)
    callbacks: list[Any] = [progress]
    if place.remote is not None:
        callbacks.append(CheckpointUpload(place))
    trainer = build_trainer(plan, rows, callbacks)
    with trainer.args.main_process_first(local=True, desc="checkpoint sync"):
        download_newest(place)
        resume = last_complete(place.local)
    resumed_step = step_of(resume) if resume is not None else None  # rotated away later
    if resume is not None:
        _log.info("resuming from checkpoint %s (step %s of %d)", resume, resumed_step, total_steps)
    else:
        _log.info(
            "starting from step 0 of %d; checkpoints every %d steps in %s",
            total_steps,
            plan.checkpoint_steps,
            place.uri,
        )
    if tracker is not None:
        tracker.log_params(run_params(plan, total_steps))
        if resume is not None:
            tracker.set_tags({"llmops.resumed_from_step": str(resumed_step)})
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    if world_rank() != 0:
        return
    runtime = time.perf_counter() - started
    metrics = dict(result.metrics)
    final = {
        "train_loss": float(metrics.get("train_loss", result.training_loss)),
        "train_runtime": float(metrics.get("train_runtime", runtime)),
        "train_total_tokens": float(trainer.state.num_input_tokens_seen or 0),
        "train_tokens_per_second": progress.session_tokens / max(runtime, 1e-9),
        "train_samples_per_second": float(metrics.get("train_samples_per_second", 0.0)),
        "train_global_step": float(trainer.state.global_step),
    }
    staging = storage.staging_dir(output_uri, env.cache_dir / "staging")
    try:
        facts = {
            "global_step": trainer.state.global_step,
            "train_loss": final["train_loss"],
            "resumed_from_step": resumed_step,
        }
        save_trained(trainer, plan, staging, facts)
        storage.publish_dir(staging, output_uri, marker=MODEL_MARKER)
    except BaseException:
        storage.discard(staging)
        raise
    _log.info(
        "saved the %s model to %s (step %d, train_loss %.4f)",
        plan.save_format.value,
        output_uri,
        trainer.state.global_step,
        final["train_loss"],
    )
    if tracker is not None:
        tracker.log_metrics(final, step=trainer.state.global_step)
