"""Status events about deployments: one shape for the handlers and the watcher.

The gateway folds ``details`` (:class:`~llmops_shared.events.payloads.details.DeploymentDetails`)
into its endpoint record field for field (see docs/serving.md); :func:`details` builds them.
A report about a move between formats carries ``details.migration`` (:func:`move_info`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from llmops_serving.config import RenderFormat
from llmops_serving.ports import Removal, ServingPorts
from llmops_serving.render import names
from llmops_serving.render.rollout import canary_percent, deployment_mode
from llmops_serving.render.status import Observed
from llmops_shared.events import (
    DeploymentDeleted,
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
    Event,
    Phase,
    StatusEntity,
    reply_status,
    status_event,
)
from llmops_shared.events.payloads.details import (
    DeploymentDetails,
    FormatMove,
    RolloutState,
    TrafficTarget,
)
from llmops_shared.kube.objects import primary
from llmops_shared.logging import get_logger

REPORTER: Final = "serving"

EndpointEvent = DeploymentRequested | DeploymentPromoted | DeploymentRolledBack | DeploymentDeleted
"""(``DeploymentMigrationRequested`` is a ``DeploymentRequested``: same fields plus ``target``.)"""

FORMAT_LABELS: Final = {
    RenderFormat.KSERVE: "a KServe InferenceService",
    RenderFormat.BUILTIN: "the built-in Deployment + Service",
}


def rollout_summary(manifest: dict[str, Any] | None) -> RolloutState:
    """The strategy and canary percent of a manifest (``None`` when unknown)."""
    if not manifest:
        return RolloutState(strategy=None, canary_percent=None)
    annotations = (primary(manifest).get("metadata") or {}).get("annotations") or {}
    return RolloutState(
        strategy=annotations.get(names.STRATEGY_ANNOTATION),
        canary_percent=canary_percent(manifest),
    )


def details(
    *,
    name: str,
    namespace: str,
    backend: str,
    manifest: dict[str, Any] | None,
    observed: Observed | None = None,
    migration: FormatMove | None = None,
) -> DeploymentDetails:
    """The ``details`` of a deployment status event; ``migration`` (see :func:`move_info`)
    only on reports about a move between formats."""
    mode = deployment_mode(manifest) if manifest else None
    extra = {"migration": migration} if migration is not None else {}
    return DeploymentDetails(
        **extra,
        name=name,
        namespace=namespace,
        backend=backend,
        deployment_mode=mode.value if mode else None,
        manifest=manifest,
        url=observed.url if observed else None,
        conditions=[dict(c) for c in observed.conditions] if observed else [],
        traffic=[TrafficTarget.model_validate(t) for t in observed.traffic] if observed else [],
        rollout=rollout_summary(manifest),
    )


def move_info(*, outcome: str, source: str, target: str, reason: str | None = None) -> FormatMove:
    """``details.migration`` of a report about a move between formats: ``outcome`` is
    ``in_progress`` (the new object is applied, the old one still serves), ``migrated`` (the new
    one is Ready and the old one removed) or ``failed`` (refused, or the new object failed:
    the old one keeps serving); ``source``/``target`` are ``kserve`` or ``builtin``."""
    return FormatMove(outcome=outcome, source=source, target=target, reason=reason)


deployment_status: Final = partial(status_event, StatusEntity.DEPLOYMENT, reporter=REPORTER)
"""A ``deployment`` status event from the serving worker (entity id = endpoint id, ``details``
from :func:`details`); ``seq`` defaults to now."""

deployment_reply: Final = partial(reply_status, StatusEntity.DEPLOYMENT, reporter=REPORTER)
"""The ``deployment`` status event answering a handled event (the watcher, which answers no
event, uses :data:`deployment_status`)."""


def move_reason(target: RenderFormat, applied: str | None, removal: Removal) -> str:
    """The reason of a completed move: where to, and what was removed or left alone."""
    parts = [f"migrated to {FORMAT_LABELS[target]}" + (f" ({applied})" if applied else "")]
    if removal.deleted:
        parts.append("removed " + ", ".join(removal.deleted))
    if removal.left:
        parts.append(
            "left alone (not created by llm-ops for this endpoint): " + ", ".join(removal.left)
        )
    return "; ".join(parts)


async def report_failure(
    event: Event, payload: EndpointEvent, ports: ServingPorts, reason: str
) -> None:
    """Publish ``Failed`` with ``reason`` out of band, before the event is dead-lettered."""
    namespace = names.namespace_for(payload.environment)
    info = details(
        name=payload.name, namespace=namespace, backend=ports.backend.name, manifest=None
    )
    get_logger(__name__).warning(
        "deployment_refused", endpoint_id=payload.endpoint_id, reason=reason
    )
    await ports.sink.publish(
        deployment_reply(event, payload.endpoint_id, Phase.FAILED, reason=reason, details=info)
    )
