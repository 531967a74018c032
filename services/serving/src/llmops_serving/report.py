"""Status events about deployments: one shape for the handlers and the watcher.

The gateway folds ``details`` into its endpoint record field for field, so :func:`details` is a
contract with it (see docs/serving.md):
``{name, namespace, backend, deployment_mode, manifest, url, conditions, traffic, rollout}``.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import JsonValue

from llmops_serving.config import RenderFormat
from llmops_serving.ports import Removal
from llmops_serving.render import names
from llmops_serving.render.rollout import canary_percent, deployment_mode
from llmops_serving.render.status import Observed
from llmops_shared.events import Envelope, Phase, StatusEntity, status_event

REPORTER: Final = "serving"

FORMAT_LABELS: Final = {
    RenderFormat.KSERVE: "a KServe InferenceService",
    RenderFormat.BUILTIN: "the built-in Deployment + Service",
}


def _primary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object whose annotations describe the endpoint (the Deployment of a List)."""
    if manifest.get("kind") == "List":
        items: list[dict[str, Any]] = manifest.get("items") or [{}]
        return items[0]
    return manifest


def rollout_summary(manifest: dict[str, Any] | None) -> dict[str, JsonValue]:
    """``{strategy, canary_percent}`` of a manifest (``None`` values when unknown)."""
    if not manifest:
        return {"strategy": None, "canary_percent": None}
    annotations = (_primary(manifest).get("metadata") or {}).get("annotations") or {}
    return {
        "strategy": annotations.get(names.STRATEGY_ANNOTATION),
        "canary_percent": canary_percent(manifest),
    }


def details(
    *,
    name: str,
    namespace: str,
    backend: str,
    manifest: dict[str, Any] | None,
    observed: Observed | None = None,
    migration: dict[str, JsonValue] | None = None,
) -> dict[str, JsonValue]:
    """The ``details`` of a deployment status event; ``migration`` (see :func:`migration_info`)
    only on reports about a move between formats."""
    mode = deployment_mode(manifest) if manifest else None
    extra: dict[str, JsonValue] = {"migration": migration} if migration is not None else {}
    return {
        **extra,
        "name": name,
        "namespace": namespace,
        "backend": backend,
        "deployment_mode": mode.value if mode else None,
        "manifest": manifest,
        "url": observed.url if observed else None,
        "conditions": list(observed.conditions) if observed else [],
        "traffic": list(observed.traffic) if observed else [],
        "rollout": rollout_summary(manifest),
    }


def migration_info(
    *, outcome: str, source: str, target: str, reason: str | None = None
) -> dict[str, JsonValue]:
    """``details.migration`` of a report about a move between formats: ``outcome`` is
    ``in_progress`` (the new object is applied, the old one still serves), ``migrated`` (the new
    one is Ready and the old one removed) or ``failed`` (refused, or the new object failed:
    the old one keeps serving); ``source``/``target`` are ``kserve`` or ``builtin``."""
    return {"outcome": outcome, "from": source, "target": target, "reason": reason}


def deployment_status(
    *,
    endpoint_id: str,
    phase: Phase,
    reason: str | None,
    details: dict[str, JsonValue],
    correlation_id: str | None,
    seq: int | None = None,
) -> Envelope:
    """A ``deployment`` status event (entity id = endpoint id) from the serving worker;
    ``seq`` defaults to now."""
    return status_event(
        StatusEntity.DEPLOYMENT,
        entity_id=endpoint_id,
        phase=phase,
        reporter=REPORTER,
        correlation_id=correlation_id,
        reason=reason,
        details=details,
        seq=seq,
    )


def migration_reason(target: RenderFormat, applied: str | None, removal: Removal) -> str:
    """The reason of a completed move: where to, and what was removed or left alone."""
    parts = [f"migrated to {FORMAT_LABELS[target]}" + (f" ({applied})" if applied else "")]
    if removal.deleted:
        parts.append("removed " + ", ".join(removal.deleted))
    if removal.left:
        parts.append(
            "left alone (not created by llm-ops for this endpoint): " + ", ".join(removal.left)
        )
    return "; ".join(parts)
