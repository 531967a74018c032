"""Rollout states of an InferenceService and the transforms between them (pure).

Which mechanism splits traffic depends on KServe's deployment mode (checked against the v0.20
CRD in ``shared/schemas``):

* ``Serverless``: ``spec.predictor.canaryTrafficPercent``; Knative keeps the last fully rolled
  out revision and sends it the rest. Promote removes the field (100 % to the latest),
  rollback sets it to 0 (all traffic pinned to the previous revision).
* ``Standard`` (v0.20): the ``spec.canary`` list, each entry a named predictor with its own
  ``trafficPercent``; ``spec.predictor`` stays the stable version. Promote makes the canary's
  predictor (with its name) the stable one, rollback removes the canary entry.
* ``RawDeployment``: no traffic splitting at all; it silently ignores
  ``canaryTrafficPercent``, so canary and rollback requests are refused instead of emitting a
  field that does nothing.

The state is kept on the object (``llm-ops.io/rollout-state``), so promote and rollback
events, which carry no spec, work from the object alone, and a redelivered one is a no-op.
"""

from __future__ import annotations

import copy
from enum import StrEnum
from typing import Any

from llmops_serving.config import DeploymentMode
from llmops_serving.render import names
from llmops_shared.kube import objects
from llmops_shared.streams import NonRetryableError


class RolloutState(StrEnum):
    """Where an endpoint's rollout is (the ``llm-ops.io/rollout-state`` annotation)."""

    FULL = "full"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"


class RolloutRefused(NonRetryableError):
    """The request asks for something the deployment mode cannot do; retrying cannot help."""


def canary_refusal(mode: DeploymentMode | None) -> str:
    """Why a canary cannot be rendered in ``mode`` (``None``: the built-in backend)."""
    if mode is DeploymentMode.RAW_DEPLOYMENT:
        return (
            "canary rollout needs deploymentMode Serverless (or Standard on KServe >= 0.20, "
            "spec.canary); RawDeployment ignores canaryTrafficPercent"
        )
    return (
        "canary rollout needs KServe (SERVING_FRAMEWORK_ENABLED=true, deploymentMode "
        "Serverless or Standard); the built-in Deployment + Service cannot split traffic"
    )


def deployment_mode(manifest: dict[str, Any]) -> DeploymentMode | None:
    """The mode an InferenceService was rendered for (``None`` for other kinds)."""
    if manifest.get("kind") != "InferenceService":
        return None
    value = _annotations(manifest).get(names.DEPLOYMENT_MODE_ANNOTATION)
    return DeploymentMode(value) if value else DeploymentMode.SERVERLESS


def rollout_state(manifest: dict[str, Any]) -> RolloutState:
    """The recorded rollout state (``full`` when the object has none)."""
    value = _annotations(manifest).get(names.ROLLOUT_STATE_ANNOTATION)
    return RolloutState(value) if value else RolloutState.FULL


def canary_percent(manifest: dict[str, Any]) -> int | None:
    """Percent of traffic on the canary, or ``None`` when no canary is configured."""
    spec = manifest.get("spec") or {}
    if manifest.get("kind") != "InferenceService":
        return None
    canaries = spec.get("canary") or []
    if canaries:
        return sum(int(c.get("trafficPercent", 0)) for c in canaries)
    value = (spec.get("predictor") or {}).get("canaryTrafficPercent")
    return None if value is None else int(value)


def promote(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with the canary taking all traffic; unchanged when there is no canary."""
    result = copy.deepcopy(manifest)
    mode = deployment_mode(result)
    spec = result.get("spec") or {}
    if mode is DeploymentMode.SERVERLESS and "canaryTrafficPercent" in spec.get("predictor", {}):
        del spec["predictor"]["canaryTrafficPercent"]
    elif mode is DeploymentMode.STANDARD and spec.get("canary"):
        spec["predictor"] = spec.pop("canary")[0]["predictor"]
    else:
        return result  # nothing to promote: a redelivered promote, or a blue-green endpoint
    _set_state(result, RolloutState.PROMOTED)
    return result


def rollback(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with all traffic back on the previous version.

    Raises :class:`RolloutRefused` when the mode keeps no previous version to return to.
    """
    result = copy.deepcopy(manifest)
    mode = deployment_mode(result)
    state = rollout_state(result)
    spec = result.get("spec") or {}
    if mode is DeploymentMode.SERVERLESS:
        spec.setdefault("predictor", {})["canaryTrafficPercent"] = 0
    elif mode is DeploymentMode.STANDARD and spec.get("canary"):
        del spec["canary"]
    elif state is RolloutState.ROLLED_BACK:
        return result  # a redelivered rollback: already done
    else:
        where = f"deploymentMode {mode.value}" if mode else "the built-in Deployment + Service"
        raise RolloutRefused(
            f"rollback needs a previous version to return to; {where} keeps none outside a "
            "canary rollout (Serverless pins the previous revision with canaryTrafficPercent 0)"
        )
    _set_state(result, RolloutState.ROLLED_BACK)
    return result


def desired_from_live(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of a live object this worker applies: identity, our labels and annotations,
    and the spec; never status, managedFields or others' labels (re-applying those would take
    their ownership)."""
    return objects.desired_from_live(obj, names.is_ours)


def _annotations(manifest: dict[str, Any]) -> dict[str, str]:
    if manifest.get("kind") == "List":
        items = manifest.get("items") or [{}]
        return _annotations(items[0])
    annotations: dict[str, str] = (manifest.get("metadata") or {}).get("annotations") or {}
    return annotations


def _set_state(manifest: dict[str, Any], state: RolloutState) -> None:
    manifest.setdefault("metadata", {}).setdefault("annotations", {})[
        names.ROLLOUT_STATE_ANNOTATION
    ] = state.value
