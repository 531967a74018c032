"""prepare_data: read the dataset version, validate its records, tokenize and split them.

``python -m llmops_trainer.prepare_data --job-type=SFT --model-family=llama
--base-model-uri=... --dataset-name=... --dataset-version=v1 --dataset-type=sft_pair
--dataset-uri=... [--dataset-store=dvc --dataset-remote=... --dataset-digest=<md5>.dir
--dataset-id=...] --max-seq-len=4096 --output-uri=<data dir> [--eval-fraction=0.1]``

Writes the prepared-data directory (see llmops_trainer.prepared) and records the dataset
version as an input of the job's MLflow run.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer

from llmops_trainer import storage
from llmops_trainer.cli import (
    BaseModelRefOption,
    BaseModelUriOption,
    Common,
    JobTypeOption,
    MaxSeqLenOption,
    ModelFamilyOption,
    check_common,
    new_app,
    run_stage,
)
from llmops_trainer.encode import Encoder, Row
from llmops_trainer.env import StageEnv
from llmops_trainer.errors import Refused
from llmops_trainer.loading import load_tokenizer
from llmops_trainer.locations import base_model
from llmops_trainer.prepared import (
    EVAL_FILE,
    FORMAT_VERSION,
    MARKER_FILE,
    SPLIT_SEED,
    TRAIN_FILE,
    split,
    write_rows,
)
from llmops_trainer.records import Record, parse_file
from llmops_trainer.sources import DatasetSource, Pin, SourceFile, read_pinned, read_unpinned
from llmops_trainer.tracking import RunTracker, flat_params
from llmops_trainer.vocab import DATASET_TYPE_FOR_JOB, DatasetStore, DatasetType

STAGE = "prepare-data"
_log = logging.getLogger("llmops_trainer.prepare_data")  # not __main__ under -m
app = new_app("Validate, tokenize and split a dataset version for training.")


@app.command()
def prepare_data(
    job_type: JobTypeOption,
    model_family: ModelFamilyOption,
    dataset_name: Annotated[str, typer.Option("--dataset-name", help="Catalog dataset name.")],
    dataset_version: Annotated[
        str, typer.Option("--dataset-version", help="The version's tag, e.g. v1.0.0.")
    ],
    dataset_type: Annotated[DatasetType, typer.Option("--dataset-type", help="Record layout.")],
    dataset_uri: Annotated[
        str, typer.Option("--dataset-uri", help="The dataset's storage_uri (read when unpinned).")
    ],
    max_seq_len: MaxSeqLenOption,
    output_uri: Annotated[str, typer.Option("--output-uri", help="The data directory to write.")],
    base_model_ref: BaseModelRefOption = None,
    base_model_uri: BaseModelUriOption = None,
    dataset_store: Annotated[
        DatasetStore | None, typer.Option("--dataset-store", help="Where the pinned version is.")
    ] = None,
    dataset_remote: Annotated[
        str | None, typer.Option("--dataset-remote", help="DVC remote / built-in store URI.")
    ] = None,
    dataset_digest: Annotated[
        str | None, typer.Option("--dataset-digest", help="The version's '<md5>.dir' digest.")
    ] = None,
    dataset_id: Annotated[
        str | None, typer.Option("--dataset-id", help="Catalog dataset id (built-in store).")
    ] = None,
    eval_fraction: Annotated[
        float, typer.Option("--eval-fraction", help="Share of records held out for evaluate.")
    ] = 0.1,
) -> None:
    """Validate, tokenize and split the dataset; write the prepared-data directory."""
    common = Common(job_type, model_family, base_model_ref, base_model_uri)
    check_common(common)
    expected = DATASET_TYPE_FOR_JOB[job_type]
    if dataset_type is not expected:
        raise Refused(
            f"--dataset-type {dataset_type.value} cannot train {job_type.value}: it trains on "
            f"{expected.value} records"
        )
    if not 0.0 < eval_fraction < 1.0:
        raise Refused(f"--eval-fraction must be between 0 and 1 (exclusive), got {eval_fraction}")
    pin = _pin(dataset_store, dataset_remote, dataset_digest, dataset_id)
    env = StageEnv.from_environ()
    model = base_model(
        base_model_uri, ref=base_model_ref, job_type=job_type, cache_dir=env.cache_dir
    )
    tracker = RunTracker.from_env(env, stage=STAGE)

    if pin is not None:
        source, files = read_pinned(pin, version=dataset_version, dataset_type=dataset_type)
    else:
        source, files = read_unpinned(dataset_uri, dataset_type=dataset_type)
    records = list(_records(files, dataset_type))
    if not records:
        where = pin.remote if pin is not None else dataset_uri
        raise Refused(
            f"dataset {dataset_name}@{dataset_version} has no records at {where}: no "
            f".jsonl/.json/.parquet{'/.txt' if expected is DatasetType.PRETRAIN_CORPUS else ''} "
            "file holds any"
        )
    if dataset_type is DatasetType.EMBEDDING_PAIR:
        records = _consistent_negatives(records)

    tokenizer = load_tokenizer(model)
    encoder = Encoder(tokenizer, dataset_type, max_seq_len)
    train_records, eval_records = split(records, eval_fraction)
    train_rows = [encoder.encode(r) for r in train_records]
    eval_rows = [encoder.encode(r) for r in eval_records]
    info: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "job_type": job_type.value,
        "model_family": model_family.value,
        "dataset": {
            "name": dataset_name,
            "version": dataset_version,
            "type": dataset_type.value,
            "digest": source.digest,
            "pinned": source.pinned,
            "source": source.source,
            "files": len(source.files),
        },
        "tokenizer": model.uri,
        "max_seq_len": max_seq_len,
        "representation": encoder.representation,
        "columns": sorted(train_rows[0]) if train_rows else [],
        "records": {
            "total": len(records),
            "train": len(train_rows),
            "eval": len(eval_rows),
            "truncated": encoder.truncated,
        },
        "split": {"eval_fraction": eval_fraction, "seed": SPLIT_SEED},
    }
    _write(output_uri, train_rows, eval_rows, info, env)
    _log.info(
        "prepared %s@%s: %d train and %d eval records (%d truncated to %d tokens) -> %s",
        dataset_name,
        dataset_version,
        len(train_rows),
        len(eval_rows),
        encoder.truncated,
        max_seq_len,
        output_uri,
    )
    if tracker is not None:
        _track(tracker, source, info, dataset_name, dataset_version)


def _pin(
    store: DatasetStore | None, remote: str | None, digest: str | None, dataset_id: str | None
) -> Pin | None:
    """The pinned version, or None when no pin flag is given; all of them or none."""
    given = {"--dataset-store": store, "--dataset-remote": remote, "--dataset-digest": digest}
    if all(value is None for value in given.values()):
        return None
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise Refused(f"a pinned dataset needs {', '.join(missing)} too")
    assert store is not None
    assert remote is not None
    assert digest is not None
    return Pin(store=store, remote=remote, digest=digest, dataset_id=dataset_id)


def _records(files: Iterator[SourceFile], dataset_type: DatasetType) -> Iterator[Record]:
    for file in files:
        parsed = parse_file(file.relpath, file.data, dataset_type)
        if parsed is not None:
            _log.info("%s: %d records", file.relpath, len(parsed.records))
            yield from parsed.records


def _consistent_negatives(records: list[Record]) -> list[Record]:
    """Every row of a sentence-transformers dataset has the same columns: negatives are kept
    only when every record has one."""
    with_negative = sum("negative" in r for r in records)
    if 0 < with_negative < len(records):
        _log.warning(
            "%d of %d embedding_pair records have a negative: training on (query, positive) "
            "pairs only, with in-batch negatives",
            with_negative,
            len(records),
        )
        return [{k: v for k, v in r.items() if k != "negative"} for r in records]
    return records


def _write(
    output_uri: str,
    train_rows: Sequence[Row],
    eval_rows: Sequence[Row],
    info: dict[str, object],
    env: StageEnv,
) -> None:
    staging = storage.staging_dir(output_uri, env.cache_dir / "staging")
    try:
        write_rows(staging / TRAIN_FILE, train_rows)
        write_rows(staging / EVAL_FILE, eval_rows)
        (staging / MARKER_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        storage.publish_dir(staging, output_uri, marker=MARKER_FILE)
    except BaseException:
        storage.discard(staging)
        raise


def _track(
    tracker: RunTracker,
    source: DatasetSource,
    info: dict[str, object],
    name: str,
    version: str,
) -> None:
    records = info["records"]
    assert isinstance(records, dict)
    assert source.digest is not None
    tracker.log_dataset(
        name=name,
        digest=source.digest,
        source_type=source.source_type,
        source=source.source,
        tags={"llmops.dataset_version": version, "llmops.dataset_pinned": str(source.pinned)},
        profile={"records": records["total"], "files": len(source.files)},
    )
    tracker.log_params(
        flat_params(
            "data",
            {
                "train_records": records["train"],
                "eval_records": records["eval"],
                "truncated_records": records["truncated"],
                "max_seq_len": info["max_seq_len"],
                "digest": source.digest,
                "pinned": source.pinned,
                "representation": info["representation"],
            },
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; its exit code."""
    return run_stage(STAGE, app, argv)


if __name__ == "__main__":
    sys.exit(main())
