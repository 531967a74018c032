"""Where models are: the base model named by ``--base-model-uri``, trained models at
``--model-uri``; resolved to something ``from_pretrained`` can load.

* a local path or ``file://`` URI: used in place;
* ``hf://<repo_id>@<revision>``: ``from_pretrained(repo_id, revision=revision)`` (the Hub, or
  ``HF_ENDPOINT`` / the offline cache the image carries);
* any other fsspec URI (``s3://prefix``): downloaded first. Base models are cached under
  ``$LLMOPS_CACHE_DIR/models/`` keyed by URI (catalog locations are immutable snapshots);
  trained models are downloaded afresh, since a retried train replaces them.

No torch here: register resolves models too and must stay light.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmops_trainer import storage
from llmops_trainer.errors import Refused
from llmops_trainer.vocab import JobType

_log = logging.getLogger(__name__)

HF_SCHEME: Final = "hf://"
COMPLETE_MARKER: Final = ".llmops-download-complete"
MODEL_MARKER: Final = "llmops-model.json"
"""What train writes last into a model directory; a directory without it is not finished."""


@dataclass(frozen=True)
class ModelSource:
    """A model resolved for ``from_pretrained``: a local directory or a Hub repo id."""

    uri: str
    name_or_path: str
    revision: str | None = None

    @property
    def local_dir(self) -> Path | None:
        """The local directory, or None for a Hub repo."""
        return None if self.uri.startswith(HF_SCHEME) else Path(self.name_or_path)


def base_model(
    uri: str | None, *, ref: str | None, job_type: JobType, cache_dir: Path
) -> ModelSource:
    """The base model (for PRETRAIN: the init directory) of a job; :class:`Refused` when it
    has no location or is not a model directory."""
    if uri is None:
        if job_type is JobType.PRETRAIN:
            raise Refused(
                "PRETRAIN needs --base-model-uri: the init directory (config.json and a "
                "tokenizer) of the model to train from scratch"
            )
        raise Refused(
            f"base model '{ref or '(no --base-model-ref)'}' has no location: give the catalog "
            "entry a storage_uri or import it with a snapshot"
        )
    what = "the init directory" if job_type is JobType.PRETRAIN else f"base model '{ref}'"
    return resolve(uri, what=what, cache_dir=cache_dir / "models")


def resolve(uri: str, *, what: str, cache_dir: Path | None) -> ModelSource:
    """Resolve ``uri``; remote directories are downloaded (into ``cache_dir`` keyed by URI,
    or a fresh temporary directory when ``cache_dir`` is None)."""
    if uri.startswith(HF_SCHEME):
        repo_id, _, revision = uri.removeprefix(HF_SCHEME).partition("@")
        if not repo_id:
            raise Refused(f"{what}: {uri} names no repository (hf://<repo_id>@<revision>)")
        return ModelSource(uri, repo_id, revision or None)
    location = storage.locate(uri)
    if location.local:
        path = Path(location.path)
        if not (path / "config.json").is_file():
            raise Refused(f"{what} at {uri} is not a model directory (no config.json)")
        return ModelSource(uri, str(path))
    if not storage.exists(storage.join(uri, "config.json")):
        raise Refused(f"{what} at {uri} is not a model directory (no config.json)")
    return ModelSource(uri, str(_download(uri, cache_dir)))


def _download(uri: str, cache_dir: Path | None) -> Path:
    if cache_dir is None:
        target = Path(tempfile.mkdtemp(prefix="llmops-model-"))
        _log.info("downloading %s to %s", uri, target)
        storage.download_dir(uri, target)
        return target
    key = hashlib.sha256(uri.encode()).hexdigest()[:24]
    target = cache_dir / key
    if (target / COMPLETE_MARKER).exists():
        _log.info("using the cached copy of %s at %s", uri, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    _log.info("downloading %s to %s", uri, target)
    try:
        storage.download_dir(uri, staging)
        (staging / COMPLETE_MARKER).write_text(uri)
        if target.exists():  # an incomplete copy of an earlier attempt, or a concurrent rank's
            if (target / COMPLETE_MARKER).exists():
                return target
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def check_trained(uri: str) -> None:
    """Refuse ``uri`` unless train completed a model there (its marker is written last)."""
    if not storage.exists(storage.join(uri, MODEL_MARKER)):
        raise Refused(
            f"--model-uri {uri} holds no trained model ({MODEL_MARKER} is missing): run train first"
        )


def trained_model(uri: str) -> ModelSource:
    """train's output at ``uri``, local (downloaded afresh when remote); refused when train
    never completed it."""
    check_trained(uri)
    return resolve(uri, what="the trained model", cache_dir=None)
