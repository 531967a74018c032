"""Status events about deployments: one shape for the handlers and the watcher.

The gateway folds ``details`` into its endpoint record field for field, so :func:`details` is a
contract with it (see docs/serving.md):
``{name, namespace, backend, deployment_mode, manifest, url, conditions, traffic, rollout}``.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import JsonValue

from llmops_serving.render import names
from llmops_serving.render.rollout import canary_percent, deployment_mode
from llmops_serving.render.status import Observed
from llmops_shared.events import Envelope, Phase, StatusEntity, status_event

REPORTER: Final = "serving"


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
) -> dict[str, JsonValue]:
    """The ``details`` of a deployment status event."""
    mode = deployment_mode(manifest) if manifest else None
    return {
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
