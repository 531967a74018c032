"""The environment every stage gets from the pipeline, read once into a value.

Reading it in one place keeps the stages honest about what they depend on, and lets tests
pass an explicit mapping instead of patching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUTPUTS_DIR = "/tmp"


@dataclass(frozen=True)
class StageEnv:
    """What the stages read from their environment (empty values count as unset)."""

    tracking_uri: str | None
    run_id: str | None
    job_id: str | None
    outputs_dir: Path
    artifacts_destination: str | None
    cache_dir: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> StageEnv:
        """Read ``MLFLOW_TRACKING_URI``, ``MLFLOW_RUN_ID``, ``LLMOPS_JOB_ID``,
        ``LLMOPS_OUTPUTS_DIR``, ``MLFLOW_ARTIFACTS_DESTINATION`` and ``LLMOPS_CACHE_DIR``."""
        env = os.environ if environ is None else environ

        def value(name: str) -> str | None:
            raw = env.get(name, "").strip()
            return raw or None

        cache = value("LLMOPS_CACHE_DIR") or os.path.join(
            env.get("TMPDIR") or "/tmp", "llmops-trainer-cache"
        )
        return cls(
            tracking_uri=value("MLFLOW_TRACKING_URI"),
            run_id=value("MLFLOW_RUN_ID"),
            job_id=value("LLMOPS_JOB_ID"),
            outputs_dir=Path(value("LLMOPS_OUTPUTS_DIR") or DEFAULT_OUTPUTS_DIR),
            artifacts_destination=value("MLFLOW_ARTIFACTS_DESTINATION"),
            cache_dir=Path(cache),
        )


def world_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank under torchrun (``RANK``), 0 when not distributed."""
    env = os.environ if environ is None else environ
    return int(env.get("RANK", "0") or 0)


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank on its node (``LOCAL_RANK``), 0 when not distributed."""
    env = os.environ if environ is None else environ
    return int(env.get("LOCAL_RANK", "0") or 0)


def world_size(environ: Mapping[str, str] | None = None) -> int:
    """How many training processes there are in all (``WORLD_SIZE``), 1 when not distributed."""
    env = os.environ if environ is None else environ
    return int(env.get("WORLD_SIZE", "1") or 1)
