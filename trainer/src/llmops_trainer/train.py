"""train: fine-tune (or pretrain) the model on the prepared data and save it.

``torchrun --standalone --nnodes=1 --nproc_per_node=N -m llmops_trainer.train --job-type=SFT
--model-family=llama --base-model-uri=... --method=lora --objective=sft --data-uri=<data>
--output-uri=<model> --lr=1e-4 --batch-size=4 --num-epochs=3 --max-seq-len=4096
--precision=bf16 --save-format=hf --artifact-name=... [--quantization=nf4]
[--checkpoint-steps=N] [--logging-steps=1]`` (plain ``python -m`` works too).

The libraries train (TRL's SFTTrainer / DPOTrainer, sentence-transformers' trainer); this
module decides what runs where, resumes from checkpoints, logs to the job's MLflow run and
publishes the model to ``--output-uri`` only once it is completely written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from llmops_trainer.cli import (
    BaseModelRefOption,
    BaseModelUriOption,
    BatchSizeOption,
    Common,
    DataUriOption,
    JobTypeOption,
    MaxSeqLenOption,
    ModelFamilyOption,
    SaveFormatOption,
    check_common,
    new_app,
    run_stage,
)
from llmops_trainer.env import StageEnv, world_rank, world_size
from llmops_trainer.errors import Refused
from llmops_trainer.hardware import check_method, choose_compute, cuda_available
from llmops_trainer.locations import base_model
from llmops_trainer.plan import TrainPlan, default_checkpoint_steps, total_steps
from llmops_trainer.prepared import Prepared
from llmops_trainer.tracking import RunTracker
from llmops_trainer.vocab import (
    OBJECTIVE_FOR_JOB,
    JobType,
    Method,
    Objective,
    Precision,
    Quantization,
)

STAGE = "train"
_log = logging.getLogger("llmops_trainer.train")  # not __main__ under -m
app = new_app("Train the model on the prepared data and save it.")


@app.command()
def train(
    job_type: JobTypeOption,
    model_family: ModelFamilyOption,
    method: Annotated[Method, typer.Option("--method", help="full, lora or qlora.")],
    objective: Annotated[Objective, typer.Option("--objective", help="The training objective.")],
    data_uri: DataUriOption,
    output_uri: Annotated[str, typer.Option("--output-uri", help="Where the model goes.")],
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate.")],
    batch_size: BatchSizeOption,
    num_epochs: Annotated[int, typer.Option("--num-epochs", min=1, help="Passes over the data.")],
    max_seq_len: MaxSeqLenOption,
    precision: Annotated[Precision, typer.Option("--precision", help="fp16, bf16 or fp32.")],
    save_format: SaveFormatOption,
    artifact_name: Annotated[
        str, typer.Option("--artifact-name", help="Name of the model (registered by register).")
    ],
    base_model_ref: BaseModelRefOption = None,
    base_model_uri: BaseModelUriOption = None,
    quantization: Annotated[
        Quantization | None, typer.Option("--quantization", help="qlora's base quantization.")
    ] = None,
    checkpoint_steps: Annotated[
        int | None,
        typer.Option(
            "--checkpoint-steps", min=1, help="Steps between checkpoints (~10%, at least 50)."
        ),
    ] = None,
    logging_steps: Annotated[
        int, typer.Option("--logging-steps", min=1, help="Steps between metric logs.")
    ] = 1,
) -> None:
    """Train and publish the model."""
    common = Common(job_type, model_family, base_model_ref, base_model_uri)
    check_common(common)
    if objective is not OBJECTIVE_FOR_JOB[job_type]:
        raise Refused(
            f"--objective {objective.value} does not train {job_type.value} (it trains with "
            f"{OBJECTIVE_FOR_JOB[job_type].value})"
        )
    if job_type is JobType.PRETRAIN and method is not Method.FULL:
        raise Refused(
            f"PRETRAIN trains from scratch: method full only (got {method.value}; adapters "
            "need pretrained weights to adapt)"
        )
    if lr <= 0:
        raise Refused(f"--lr must be positive, got {lr}")
    cuda = cuda_available()
    check_method(method, quantization, cuda=cuda)  # before anything is loaded or written
    env = StageEnv.from_environ()
    base = base_model(
        base_model_uri, ref=base_model_ref, job_type=job_type, cache_dir=env.cache_dir
    )
    prepared = Prepared.load(data_uri)
    prepared.check_job_type(job_type)
    rows = prepared.rows("train")
    if not rows:
        raise Refused(f"--data-uri {data_uri} has no training rows")
    if max_seq_len != prepared.max_seq_len:
        _log.warning(
            "--max-seq-len %d differs from the %d the data was prepared with: rows are cut to %d",
            max_seq_len,
            prepared.max_seq_len,
            min(max_seq_len, prepared.max_seq_len),
        )

    from llmops_trainer.checkpoints import place_for

    world = world_size()
    steps = total_steps(len(rows), batch_size, num_epochs, world)
    place = place_for(output_uri, env.cache_dir)
    plan = TrainPlan(
        common=common,
        method=method,
        objective=objective,
        base=base,
        compute=choose_compute(precision, cuda=cuda),
        lr=lr,
        batch_size=batch_size,
        num_epochs=num_epochs,
        max_seq_len=max_seq_len,
        save_format=save_format,
        artifact_name=artifact_name,
        checkpoint_dir=place.local,
        checkpoint_steps=checkpoint_steps or default_checkpoint_steps(steps),
        logging_steps=logging_steps,
        world_size=world,
    )
    tracker = RunTracker.from_env(env, stage=STAGE) if world_rank() == 0 else None
    from llmops_trainer.runner import run

    run(plan, rows, place, tracker, env, output_uri=output_uri, total_steps=steps)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; its exit code."""
    return run_stage(STAGE, app, argv)


if __name__ == "__main__":
    sys.exit(main())
