"""What an attempt's end means for its stage and pipeline (pure: no processes, no files).

* Ended by itself (an exit code): 0 succeeded; anything else failed the trainer, which no
  retry can fix (Argo's ``OnError`` policy): the pipeline fails naming the stage, its exit and
  the tail of its log.
* Killed from outside (no exit code): the worker stopped it (rerun, not counted), or
  something else did (a reboot, someone's ``kill``): an infrastructure error, retried under the
  template's retry policy with backoff, and the pipeline fails once the retries are used up.

Each function updates the stage and returns the pipeline's failure reason, or None.
"""

from __future__ import annotations

from llmops_workflow.local.plan import RetryPolicy
from llmops_workflow.local.process import describe_exit
from llmops_workflow.local.state import StageState, now_iso


def ended_by_itself(stage: StageState, code: int, log_tail: str) -> str | None:
    """The attempt exited with ``code``."""
    stage.pid, stage.exit_code, stage.finished_at = None, code, now_iso()
    if code == 0:
        stage.phase, stage.message = "Succeeded", None
        return None
    stage.phase, stage.message = "Failed", describe_exit(code)
    return f"{stage.name} failed ({stage.message})" + (f":\n{log_tail}" if log_tail else "")


def killed_from_outside(stage: StageState, retry: RetryPolicy, now: float) -> str | None:
    """The attempt's wrapper is gone without an exit code."""
    stage.pid = None
    if stage.interrupted:
        stage.phase, stage.interrupted = "Pending", False
        stage.message = f"attempt {stage.attempt} was interrupted by a worker stop; rerun"
        return None
    if stage.retries < retry.limit:
        stage.retries += 1
        delay = retry.delay(stage.retries)
        stage.phase, stage.retry_at = "Error", now + delay
        stage.message = (
            f"attempt {stage.attempt} was killed from outside; retry {stage.retries}/"
            f"{retry.limit} in {delay:.0f}s"
        )
        return None
    stage.phase, stage.finished_at = "Error", now_iso()
    stage.message = f"attempt {stage.attempt} was killed from outside"
    return (
        f"{stage.name}: killed from outside {stage.attempt} times (no exit code); "
        f"retries used up ({retry.limit})"
    )
