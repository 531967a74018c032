"""The seed's example specs (section 5.1 and 5.2) and a helper to derive variants from them.

Tests change one thing at a time with :func:`changed`, so every failing case differs from a
spec that is known to validate by exactly the fields under test.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC as SEED_DEPLOYMENT_SPEC
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC as SEED_TRAIN_JOB_SPEC

DELETE: Final = object()
"""Value for :func:`changed` that removes the key."""

PRETRAIN_CHANGES: Final[dict[str, Any]] = {
    "job_type": "PRETRAIN",
    "base_model_ref": None,
    "dataset_ref.type": "pretrain_corpus",
    "method": "full",
}
"""Turns the seed SFT spec into a valid PRETRAIN spec."""

EMBEDDING_TRAIN_CHANGES: Final[dict[str, Any]] = {
    "job_type": "EMBEDDING",
    "model_family": "bert",
    "dataset_ref.type": "embedding_pair",
}
"""Turns the seed SFT spec into a valid EMBEDDING spec."""

EMBEDDING_DEPLOYMENT_CHANGES: Final[dict[str, Any]] = {
    "job_type": "EMBEDDING",
    "model_family": "bert",
    "serve_target": "RAG",
    "runtime.max_output_tokens": 0,
}
"""Turns the seed deployment into a valid deployment of an embedding model."""


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted-path ``changes`` applied (``DELETE`` removes)."""
    result = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = result
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = copy.deepcopy(value)
    return result


def train_spec(**changes: Any) -> dict[str, Any]:
    """The seed train spec with ``changes`` (use ``__`` for dots: ``hyperparams__lr=0``)."""
    return changed(SEED_TRAIN_JOB_SPEC, {k.replace("__", "."): v for k, v in changes.items()})


def deployment_spec(**changes: Any) -> dict[str, Any]:
    """The seed deployment spec with ``changes`` (``__`` for dots)."""
    return changed(SEED_DEPLOYMENT_SPEC, {k.replace("__", "."): v for k, v in changes.items()})
