"""Observed objects -> phase, reason, URL, conditions and traffic (pure).

An InferenceService is ``Ready`` when its ``Ready`` condition is True, ``Failed`` when it is
False (with the condition's reason and message), ``Pending`` otherwise (no status yet, Unknown,
or a status older than the spec: ``observedGeneration`` behind ``generation`` means the
controller has not looked at the latest apply). Traffic per revision comes from
``status.components.predictor.traffic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from llmops_serving.render.builtin import service_url
from llmops_shared.events import Phase


@dataclass(frozen=True)
class Observed:
    """What the cluster says about one endpoint's object."""

    phase: Phase
    reason: str | None = None
    url: str | None = None
    conditions: list[dict[str, JsonValue]] = field(default_factory=list)
    traffic: list[dict[str, JsonValue]] = field(default_factory=list)


_CONDITION_KEYS = ("type", "status", "reason", "message", "severity", "lastTransitionTime")


def conditions_of(status: dict[str, Any]) -> list[dict[str, JsonValue]]:
    """The conditions, trimmed to the fields people read, in a stable order."""
    found = [
        {k: c[k] for k in _CONDITION_KEYS if c.get(k) is not None}
        for c in status.get("conditions") or []
        if isinstance(c, dict)
    ]
    return sorted(found, key=lambda c: str(c.get("type", "")))


def traffic_of(status: dict[str, Any]) -> list[dict[str, JsonValue]]:
    """``status.components.predictor.traffic`` as ``{revision, percent, latest, tag?}``."""
    traffic = ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []
    result: list[dict[str, JsonValue]] = []
    for target in traffic:
        entry: dict[str, JsonValue] = {
            "revision": target.get("revisionName"),
            "percent": target.get("percent"),
            "latest": bool(target.get("latestRevision", False)),
        }
        if target.get("tag"):
            entry["tag"] = target["tag"]
        result.append(entry)
    return result


def _condition(conditions: list[dict[str, JsonValue]], kind: str) -> dict[str, JsonValue] | None:
    return next((c for c in conditions if c.get("type") == kind), None)


def _why(condition: dict[str, JsonValue]) -> str | None:
    parts = [str(condition[k]) for k in ("reason", "message") if condition.get(k)]
    return ": ".join(parts) or None


def observe_inference_service(obj: dict[str, Any]) -> Observed:
    """The phase of a live InferenceService."""
    status = obj.get("status") or {}
    conditions = conditions_of(status)
    url = status.get("url")
    traffic = traffic_of(status)
    generation = (obj.get("metadata") or {}).get("generation")
    observed_generation = status.get("observedGeneration")
    if (
        generation is not None
        and observed_generation is not None
        and int(observed_generation) < int(generation)
    ):
        reason = "the controller has not reconciled the latest spec yet"
        return Observed(Phase.PENDING, reason, url, conditions, traffic)
    ready = _condition(conditions, "Ready")
    if ready is not None and ready.get("status") == "True":
        return Observed(Phase.READY, None, url, conditions, traffic)
    if ready is not None and ready.get("status") == "False":
        return Observed(Phase.FAILED, _why(ready) or "Ready is False", url, conditions, traffic)
    waiting = (_why(ready) if ready else None) or "waiting for the KServe controller"
    return Observed(Phase.PENDING, waiting, url, conditions, traffic)


def observe_builtin(deployment: dict[str, Any]) -> Observed:
    """The phase of the built-in Deployment: Ready once a replica is available."""
    status = deployment.get("status") or {}
    metadata = deployment.get("metadata") or {}
    conditions = conditions_of(status)
    generation = metadata.get("generation")
    current = generation is None or int(status.get("observedGeneration") or 0) >= int(generation)
    progressing = _condition(conditions, "Progressing")
    if progressing is not None and progressing.get("status") == "False":
        return Observed(Phase.FAILED, _why(progressing), None, conditions, [])
    available = _condition(conditions, "Available")
    updated = int(status.get("updatedReplicas") or 0)
    if current and available is not None and available.get("status") == "True" and updated:
        url = service_url(str(metadata.get("name")), str(metadata.get("namespace")))
        traffic: list[dict[str, JsonValue]] = [
            {"revision": f"{metadata.get('name')}-{generation}", "percent": 100, "latest": True}
        ]
        return Observed(Phase.READY, None, url, conditions, traffic)
    return Observed(
        Phase.PENDING, "waiting for the Deployment to become available", None, conditions, []
    )
