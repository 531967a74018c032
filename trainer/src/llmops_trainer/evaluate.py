"""evaluate: measure the trained model on the held-out split.

``python -m llmops_trainer.evaluate --job-type=SFT --model-family=llama
[--base-model-uri=...] --suite=generation --model-uri=<model> --data-uri=<data>
--max-seq-len=4096 --batch-size=4 --output-uri=<eval dir>``

Writes ``<output-uri>/metrics.json`` (``{"suite", "metrics": {"eval_...": value}, ...}``) and
logs the metrics to the job's MLflow run, each prefixed ``eval_`` (``eval_perplexity``,
``eval_loss``, ``eval_preference_accuracy``, ``eval_accuracy_at_1``, ...). See
llmops_trainer.suites for what each suite measures.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from typing import Annotated, Any, Final

import typer

from llmops_trainer import storage
from llmops_trainer.cli import (
    BaseModelRefOption,
    BaseModelUriOption,
    BatchSizeOption,
    Common,
    DataUriOption,
    JobTypeOption,
    MaxSeqLenOption,
    ModelFamilyOption,
    ModelUriOption,
    check_common,
    new_app,
    run_stage,
)
from llmops_trainer.env import StageEnv
from llmops_trainer.errors import Refused
from llmops_trainer.locations import ModelSource, base_model, trained_model
from llmops_trainer.prepared import Prepared
from llmops_trainer.tracking import RunTracker
from llmops_trainer.vocab import SUITES_FOR_JOB, Suite

STAGE = "evaluate"
METRICS_FILE: Final = "metrics.json"
_log = logging.getLogger("llmops_trainer.evaluate")  # not __main__ under -m
app = new_app("Evaluate the trained model on the held-out split.")


@app.command()
def evaluate(
    job_type: JobTypeOption,
    model_family: ModelFamilyOption,
    suite: Annotated[Suite, typer.Option("--suite", help="What to measure.")],
    model_uri: ModelUriOption,
    data_uri: DataUriOption,
    max_seq_len: MaxSeqLenOption,
    batch_size: BatchSizeOption,
    output_uri: Annotated[str, typer.Option("--output-uri", help="The eval directory.")],
    base_model_ref: BaseModelRefOption = None,
    base_model_uri: BaseModelUriOption = None,
) -> None:
    """Evaluate, write metrics.json, log the metrics."""
    common = Common(job_type, model_family, base_model_ref, base_model_uri)
    check_common(common)
    if suite not in SUITES_FOR_JOB[job_type]:
        allowed = ", ".join(sorted(s.value for s in SUITES_FOR_JOB[job_type]))
        raise Refused(f"--suite {suite.value} does not evaluate {job_type.value} ({allowed})")
    env = StageEnv.from_environ()
    reference = None
    if suite is Suite.PREFERENCE:
        reference = base_model(
            base_model_uri, ref=base_model_ref, job_type=job_type, cache_dir=env.cache_dir
        )
    prepared = Prepared.load(data_uri)
    prepared.check_job_type(job_type)
    rows = prepared.rows("eval")
    tracker = RunTracker.from_env(env, stage=STAGE)
    model = trained_model(model_uri)
    if rows:
        metrics = _measure(suite, model, reference, rows, batch_size, max_seq_len)
    else:
        _log.warning("the eval split of %s is empty (fewer than 2 records): no metrics", data_uri)
        metrics = {}
    prefixed = {f"eval_{key}": value for key, value in metrics.items()}
    prefixed["eval_records"] = float(len(rows))
    report = {
        "suite": suite.value,
        "job_type": job_type.value,
        "model_uri": model_uri,
        "data_uri": data_uri,
        "metrics": prefixed,
    }
    staging = storage.staging_dir(output_uri, env.cache_dir / "staging")
    try:
        (staging / METRICS_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        storage.publish_dir(staging, output_uri, marker=METRICS_FILE)
    except BaseException:
        storage.discard(staging)
        raise
    _log.info("%s: %s", suite.value, json.dumps(prefixed, sort_keys=True))
    if tracker is not None:
        tracker.log_metrics(prefixed)


def _measure(
    suite: Suite,
    model: ModelSource,
    reference: ModelSource | None,
    rows: list[dict[str, Any]],
    batch_size: int,
    max_seq_len: int,
) -> dict[str, float]:
    from llmops_trainer import suites

    if suite is Suite.RETRIEVAL:
        return suites.retrieval(model, rows, batch_size=batch_size, max_seq_len=max_seq_len)
    if suite is Suite.PREFERENCE:
        from llmops_trainer.preference import BETA

        assert reference is not None
        return suites.preference(
            model, reference, rows, batch_size=batch_size, max_seq_len=max_seq_len, beta=BETA
        )
    return suites.perplexity(model, rows, batch_size=batch_size, max_seq_len=max_seq_len)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; its exit code."""
    return run_stage(STAGE, app, argv)


if __name__ == "__main__":
    sys.exit(main())
