"""What a values file says about one model version, and the vLLM settings of a full document.

Split out of :mod:`llmops_github_sync.values` so that rendering a document and editing an
existing one in place (:mod:`llmops_github_sync.values_edit`) share these facts without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

MAX_POSITION_TAGS: Final = ("max_position_embeddings", "llmops.max_position_embeddings")


@dataclass(frozen=True)
class VersionFacts:
    """What the values file says about one model version."""

    model_name: str
    version: str
    run_id: str
    experiment_id: str
    created_at: datetime
    max_position_embeddings: int | None = None


@dataclass(frozen=True)
class RenderOptions:
    """The vLLM settings of a full document."""

    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.9
    trust_remote_code: bool = True
    served_model_name: str | None = None


def max_position_embeddings(tags: Mapping[str, str]) -> int | None:
    """The model's context length from its version tags, when one is given and valid."""
    for key in MAX_POSITION_TAGS:
        raw = tags.get(key)
        if raw is None:
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            continue
        if value > 0:
            return value
    return None


def global_fields(facts: VersionFacts) -> dict[str, Any]:
    """The ``global`` keys the service owns (the five the MLflow GitHub sync it replaces wrote)."""
    return {
        "experimentId": str(facts.experiment_id),
        "runid": facts.run_id,
        "timestamp": int(facts.created_at.astimezone(UTC).strftime("%Y%m%d")),
        "modelName": facts.model_name,
        "modelVersion": str(facts.version),
    }


def effective_max_model_len(options: RenderOptions, facts: VersionFacts) -> tuple[int, bool]:
    """``VLLM_MAX_MODEL_LEN`` capped to the model's max_position_embeddings; (value, capped)."""
    limit = facts.max_position_embeddings
    if limit is not None and options.max_model_len > limit:
        return limit, True
    return options.max_model_len, False


def created_date(value: datetime | int | None) -> datetime:
    """MLflow's creation time (ms since the epoch) or an aware datetime, as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if value is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)
