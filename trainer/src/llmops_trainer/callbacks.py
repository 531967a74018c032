"""The Trainer callback that logs training progress to the job's MLflow run.

Per logging step (``--logging-steps``), with the global step: ``loss``, ``learning_rate``,
``grad_norm`` (when the trainer reports it), ``epoch`` and ``tokens_per_second`` (non-padding
input tokens of all processes since the previous log, per wall-clock second). Rows are batched
and sent with ``log_batch`` at most every ``flush_interval_s`` seconds and at the end of
training. Only the world's main process logs.

A failed flush during training (MLflow briefly down) is logged and retried with the next one,
so an outage does not kill a long training; the final flush at the end of training must work.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Final

from transformers import TrainerCallback

from llmops_trainer.tracking import RunTracker, now_ms

_log = logging.getLogger(__name__)

STEP_METRICS: Final = ("loss", "learning_rate", "grad_norm", "epoch")
MAX_BUFFERED: Final = 20_000


class MlflowProgress(TrainerCallback):
    """Buffer per-step metrics and flush them to the run; without a run (no MLflow) it only
    counts this session's tokens, for the final ``train_tokens_per_second``."""

    def __init__(self, tracker: RunTracker | None, *, flush_interval_s: float = 5.0) -> None:
        self.tracker = tracker
        self.flush_interval_s = flush_interval_s
        self.rows: list[tuple[str, float, int, int]] = []
        self._last_flush = time.monotonic()
        self._last_tokens: int | None = None
        self._last_time = time.perf_counter()
        self.session_start_tokens = 0
        self.session_tokens = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last_time = time.perf_counter()
        self._last_tokens = int(state.num_input_tokens_seen or 0)
        self.session_start_tokens = self._last_tokens

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return  # the end-of-training summary and evaluation logs are not step metrics
        stamp, step = now_ms(), int(state.global_step)
        for key in STEP_METRICS:
            value = logs.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                self.rows.append((key, float(value), stamp, step))
        tokens = logs.get("num_input_tokens_seen")
        now = time.perf_counter()
        if isinstance(tokens, int | float) and self._last_tokens is not None:
            elapsed = now - self._last_time
            if elapsed > 0:
                rate = (tokens - self._last_tokens) / elapsed
                self.rows.append(("tokens_per_second", rate, stamp, step))
            self._last_tokens = int(tokens)
            self.session_tokens = int(tokens) - self.session_start_tokens
        self._last_time = now
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush(strict=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.session_tokens = int(state.num_input_tokens_seen or 0) - self.session_start_tokens
            self.flush(strict=True)

    def flush(self, *, strict: bool) -> None:
        """Send the buffered rows; ``strict``: raise when MLflow refuses them."""
        self._last_flush = time.monotonic()
        if self.tracker is None:
            self.rows = []
            return
        if not self.rows:
            return
        try:
            self.tracker.log_metric_rows(self.rows)
        except Exception:
            if strict:
                raise
            _log.warning(
                "could not log %d metric rows to MLflow; retrying later",
                len(self.rows),
                exc_info=True,
            )
            if len(self.rows) > MAX_BUFFERED:
                _log.warning(
                    "dropping the %d oldest buffered metric rows", len(self.rows) - MAX_BUFFERED
                )
                del self.rows[: len(self.rows) - MAX_BUFFERED]
            return
        self.rows = []
