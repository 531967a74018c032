"""What every stage's command line shares: the common flags, exit codes, failure reporting.

Each stage module defines one small typer app and ends with ``main(argv)`` calling
:func:`run_stage`, which turns the outcome into the contract's exit codes:

* 0: success;
* 2: refused input (a bad flag, a bad record, a missing base model, qlora without CUDA):
  one line ``error: <what is wrong>`` on stderr;
* 1: any other failure: the traceback is logged, and the last stderr line is a one-line
  summary.

On 1 and 2 the job's MLflow run (when configured) gets ``llmops.failed_stage=<stage>`` and is
terminated FAILED, so the run never stays RUNNING after a pipeline stage died.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

import typer
from typer.exceptions import TyperException

from llmops_trainer.env import StageEnv, world_rank
from llmops_trainer.errors import Refused
from llmops_trainer.tracking import RunTracker
from llmops_trainer.vocab import JobType, ModelFamily, SaveFormat, family_supports

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_REFUSED: Final = 2

STAGE_MODULES: Final = {
    "prepare-data": "llmops_trainer.prepare_data",
    "train": "llmops_trainer.train",
    "evaluate": "llmops_trainer.evaluate",
    "register": "llmops_trainer.register",
    "tiny-model": "llmops_trainer.tiny_model",
}
"""``llmops-trainer <name>`` -> the module whose ``main(argv)`` runs it."""

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_log = logging.getLogger(__name__)

JobTypeOption = Annotated[
    JobType, typer.Option("--job-type", help="What the pipeline trains.", show_default=False)
]
ModelFamilyOption = Annotated[
    ModelFamily,
    typer.Option("--model-family", help="The base model's family.", show_default=False),
]
BaseModelRefOption = Annotated[
    str | None,
    typer.Option("--base-model-ref", help="Catalog name of the base model (tags, messages)."),
]
BaseModelUriOption = Annotated[
    str | None,
    typer.Option(
        "--base-model-uri",
        help="The base model's HF directory: a path, file://, s3://prefix or "
        "hf://<repo_id>@<revision>. For PRETRAIN: the init directory (config + tokenizer).",
    ),
]

# Flags several stages take, declared once: the pipeline renders them the same for each.
MaxSeqLenOption = Annotated[int, typer.Option("--max-seq-len", min=1, help="Tokens per row.")]
BatchSizeOption = Annotated[
    int, typer.Option("--batch-size", min=1, help="Rows per batch, per device.")
]
DataUriOption = Annotated[str, typer.Option("--data-uri", help="prepare_data's output.")]
ModelUriOption = Annotated[str, typer.Option("--model-uri", help="train's output.")]
SaveFormatOption = Annotated[SaveFormat, typer.Option("--save-format", help="hf or safetensors.")]


@dataclass(frozen=True)
class Common:
    """The flags every stage accepts."""

    job_type: JobType
    model_family: ModelFamily
    base_model_ref: str | None = None
    base_model_uri: str | None = None


def check_common(common: Common) -> None:
    """Refuse what no stage can do whatever its other flags: an encoder family generating."""
    if not family_supports(common.model_family, common.job_type):
        raise Refused(
            f"model family '{common.model_family.value}' is an encoder: it trains EMBEDDING "
            f"only, not {common.job_type.value}"
        )


def new_app(help_text: str) -> typer.Typer:
    """A one-command typer app (the command is the app: no sub-command name)."""
    return typer.Typer(
        help=help_text,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def setup_logging() -> None:
    """This package's INFO logs on stderr (basicConfig leaves handlers someone set alone)."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
    # Under torchrun every rank runs the stage: only the main one says what it does.
    level = logging.INFO if world_rank() == 0 else logging.WARNING
    logging.getLogger("llmops_trainer").setLevel(level)
    # Progress bars of datasets' map() and tokenizer fork warnings flood pipeline logs.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line, bounded, for the last stderr line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def run_stage(
    stage: str, app: typer.Typer, argv: Sequence[str] | None = None, *, report: bool = True
) -> int:
    """Run ``app`` on ``argv`` (default ``sys.argv[1:]``); the stage's exit code. ``report``:
    whether a failure marks the job's MLflow run (pipeline stages do, tools do not)."""
    setup_logging()
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        outcome = command.main(
            args=args, prog_name=f"python -m {STAGE_MODULES[stage]}", standalone_mode=False
        )
    except TyperException as exc:  # bad flags: unknown, missing, invalid values
        return _fail(stage, EXIT_REFUSED, exc.format_message(), report)
    except Refused as exc:
        return _fail(stage, EXIT_REFUSED, str(exc), report)
    except typer.Abort:
        return _fail(stage, EXIT_FAILED, f"{stage} was aborted", report)
    except Exception as exc:  # noqa: BLE001 - any failure is exit 1, traceback logged
        _log.exception("%s failed", stage)
        return _fail(stage, EXIT_FAILED, f"{stage} failed: {type(exc).__name__}: {exc}", report)
    return outcome if isinstance(outcome, int) else EXIT_OK


def _fail(stage: str, code: int, message: str, report: bool) -> int:
    """Report a failed stage to MLflow (rank 0 only), then print the one-line error."""
    if report and world_rank() == 0:
        _mark_run_failed(stage)
    sys.stderr.flush()
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def _mark_run_failed(stage: str) -> None:
    try:
        tracker = RunTracker.from_env(StageEnv.from_environ(), stage=stage)
        if tracker is not None:
            tracker.mark_failed(stage)
            _log.info("MLflow run %s marked FAILED (llmops.failed_stage=%s)", tracker.run_id, stage)
    except Exception:  # noqa: BLE001 - MLflow being down must not hide the stage's error
        _log.exception("could not mark the MLflow run of the failed %s stage", stage)


def main(argv: Sequence[str] | None = None) -> int:
    """``llmops-trainer <stage> [--flag=value ...]``: the stages behind one console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in STAGE_MODULES:
        names = ", ".join(STAGE_MODULES)
        print(f"usage: llmops-trainer {{{names}}} [--flag=value ...]", file=sys.stderr)
        return EXIT_REFUSED
    import importlib

    module = importlib.import_module(STAGE_MODULES[args[0]])
    stage_main = module.main
    code: int = stage_main(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
