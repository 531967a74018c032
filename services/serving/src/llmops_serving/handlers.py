"""Handlers of ``llmops.serving``: render, submit, report, and return (never wait for a rollout).

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. After a submission they report ``Pending`` (the watcher reports
``Ready``/``Failed`` later) or, for the manifests backend, what the backend says (``Ready``,
"written to <path>"). Moves between formats are :mod:`llmops_serving.moves`.

Bad requests (a canary the deployment mode cannot do, an object the API refuses with 4xx) get
one consistent treatment: a ``Failed`` status event with the reason is published first, so the
gateway shows the failure, and then :class:`~llmops_shared.streams.NonRetryableError` is
raised, so the runtime dead-letters the event at once (an operator can replay it after fixing
the configuration). Outages raise ``DependencyUnavailableError`` and nothing is reported: the
entry stays pending and is retried.
"""

from __future__ import annotations

from typing import Final

from llmops_serving.config import DeploymentMode
from llmops_serving.moves import handle_move, left_behind, marked, report_refusal
from llmops_serving.owners import owner_of
from llmops_serving.ports import Manifest, ServingPorts
from llmops_serving.render import names
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.names import namespace_for
from llmops_serving.render.request import serve_request
from llmops_serving.render.rollout import RolloutState, promote, rollback, rollout_state
from llmops_serving.report import (
    FORMAT_LABELS,
    EndpointEvent,
    deployment_reply,
    details,
    move_info,
    report_failure,
)
from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    DeploymentDeleted,
    DeploymentMigrationRequested,
    DeploymentPromoted,
    DeploymentRequested,
    DeploymentRolledBack,
    Envelope,
    Event,
    Phase,
    new_seq,
)
from llmops_shared.events.payloads.details import FormatMove
from llmops_shared.kube.objects import annotation
from llmops_shared.logging import get_logger
from llmops_shared.streams import NonRetryableError

_log = get_logger(__name__)


async def handle_requested(
    event: Event, request_event: DeploymentRequested, ports: ServingPorts
) -> list[Envelope]:
    """Render the endpoint's object(s) and apply them; report the backend's phase."""
    request = serve_request(
        request_event,
        storage_uri_template=ports.storage_uri_template,
        correlation_id=event.envelope.correlationid,
        request_event_id=event.envelope.id,
    )
    live = await ports.backend.read(request.namespace, request.name)
    current = live.manifest if live is not None else None
    if current is not None:
        _refuse_if_owned_by_another(current, request_event, action="deploy")
        if annotation(current, names.REQUEST_EVENT_ANNOTATION) == event.envelope.id:
            # A redelivered or replayed request: it was applied, and a promote or rollback may
            # have changed the object since. Applying it again would undo those.
            _log.info("request_already_applied", endpoint_id=request.endpoint_id)
            return []
    if ports.builtin:
        manifest = render_builtin(request, ports.options)
    else:
        stable = None
        if ports.options.deployment_mode is DeploymentMode.STANDARD:
            stable = ((current or {}).get("spec") or {}).get("predictor")
        manifest = render_inference_service(request, ports.options, stable_predictor=stable)
    # The endpoint still has objects of the other format (deployed before a flag change): they
    # keep serving until the new ones are Ready, then the watcher removes them, as after a move.
    source = await left_behind(ports.router, request.namespace, request.name, request.endpoint_id)
    if source is not None:
        manifest, applied = marked(manifest, source)
        info = move_info(outcome="in_progress", source=source.value, target=ports.router.own.value)
        envelope = await _apply(
            event,
            request_event,
            manifest,
            ports,
            action=f"deployment requested; moving from {FORMAT_LABELS[source]}",
            applied=applied,
            migration=info,
        )
        return [envelope]
    return [await _apply(event, request_event, manifest, ports, action="deployment requested")]


async def handle_promoted(
    event: Event, promoted: DeploymentPromoted, ports: ServingPorts
) -> list[Envelope]:
    """Give the canary all traffic; nothing to do unless a canary is in progress (a redelivered
    or late promote must not undo a rollback)."""
    live = await _read_or_refuse(promoted, ports, action="promote")
    if rollout_state(live) is not RolloutState.CANARY:
        _log.info("promote_skipped", endpoint_id=promoted.endpoint_id, state=rollout_state(live))
        return []
    return [await _apply(event, promoted, promote(live), ports, action="promoted")]


async def handle_rolled_back(
    event: Event, rolled_back: DeploymentRolledBack, ports: ServingPorts
) -> list[Envelope]:
    """Return all traffic to the previous version (refused when the mode keeps none); nothing to
    do unless a canary is in progress: after a promote the previous revision is the new one."""
    live = await _read_or_refuse(rolled_back, ports, action="roll back")
    if rollout_state(live) is not RolloutState.CANARY:
        _log.info(
            "rollback_skipped", endpoint_id=rolled_back.endpoint_id, state=rollout_state(live)
        )
        return []
    envelope = await _apply(
        event, rolled_back, rollback(live), ports, action=f"rolled back: {rolled_back.reason}"
    )
    return [envelope]


async def handle_deleted(
    event: Event, deleted: DeploymentDeleted, ports: ServingPorts
) -> list[Envelope]:
    """Delete the endpoint's object(s); ``Deleted`` once gone (a missing one counts as gone)."""
    namespace = namespace_for(deleted.environment)
    live = await ports.backend.read(namespace, deleted.name)
    owner = owner_of(live.manifest) if live is not None else None
    if owner is not None and owner != deleted.endpoint_id:
        # The name was reused by another endpoint after this one's object went away (a late
        # or replayed delete): this endpoint's object is gone; the other one is not ours.
        _log.warning("delete_skipped_name_reused", endpoint_id=deleted.endpoint_id, owner=owner)
        gone = True
    else:
        gone = await ports.backend.delete(namespace, deleted.name)
        # objects of the other format this platform created for the endpoint (an endpoint not
        # moved after a flag change, an interrupted move) go with it
        await ports.router.remove_other_format(
            namespace, deleted.name, keep=ports.router.own, endpoint_id=deleted.endpoint_id
        )
    base = details(
        name=deleted.name, namespace=namespace, backend=ports.backend.name, manifest=None
    )
    if gone:
        _log.info("endpoint_deleted", endpoint_id=deleted.endpoint_id, name=deleted.name)
        phase, reason = Phase.DELETED, "deleted"
    else:
        ports.cache.expect_gone(namespace, deleted.name, deleted.endpoint_id)
        phase, reason = Phase.PENDING, "deletion requested; waiting for finalizers"
    return [deployment_reply(event, deleted.endpoint_id, phase, reason=reason, details=base)]


async def _report_refused(
    event: Event, payload: EndpointEvent, ports: ServingPorts, reason: str
) -> None:
    """Report a refused request before it is dead-lettered: a refused move leaves the endpoint
    as it is (:func:`~llmops_serving.moves.report_refusal`), anything else is ``Failed``."""
    if isinstance(payload, DeploymentMigrationRequested):
        await report_refusal(event, payload, ports, reason)
    else:
        await report_failure(event, payload, ports, reason)


handle_serving_event: Final[Dispatcher[ServingPorts]] = Dispatcher(
    "serving",
    {
        DeploymentMigrationRequested: handle_move,  # before its base class
        DeploymentRequested: handle_requested,
        DeploymentPromoted: handle_promoted,
        DeploymentRolledBack: handle_rolled_back,
        DeploymentDeleted: handle_deleted,
    },
    refused=_report_refused,
)
"""The handler of ``llmops.serving``: ``handler(event, ports)``; a refused request is reported,
then raised."""


async def _read_or_refuse(payload: EndpointEvent, ports: ServingPorts, *, action: str) -> Manifest:
    namespace = namespace_for(payload.environment)
    live = await ports.backend.read(namespace, payload.name)
    if live is None:
        raise NonRetryableError(
            f"cannot {action} {namespace}/{payload.name}: the endpoint has no deployed object"
        )
    _refuse_if_owned_by_another(live.manifest, payload, action=action)
    return live.manifest


def _refuse_if_owned_by_another(live: Manifest, payload: EndpointEvent, *, action: str) -> None:
    owner = owner_of(live)
    if owner is not None and owner != payload.endpoint_id:
        raise NonRetryableError(
            f"cannot {action} {namespace_for(payload.environment)}/{payload.name} for endpoint "
            f"{payload.endpoint_id}: the object belongs to endpoint {owner}"
        )


async def _apply(
    event: Event,
    payload: EndpointEvent,
    manifest: Manifest,
    ports: ServingPorts,
    *,
    action: str,
    applied: Manifest | None = None,
    migration: FormatMove | None = None,
) -> Envelope:
    """Apply ``applied`` (default: ``manifest``) and report ``manifest``."""
    # Stamped before the change: any report the watcher makes about the changed object is then
    # newer, so the gateway never lets this "just applied" report hide an observation.
    seq = new_seq()
    observed = await ports.backend.apply(manifest if applied is None else applied)
    namespace = namespace_for(payload.environment)
    envelope = deployment_reply(
        event,
        payload.endpoint_id,
        observed.phase,
        reason=observed.reason or action,
        details=details(
            name=payload.name,
            namespace=namespace,
            backend=ports.backend.name,
            manifest=manifest,
            observed=observed,
            migration=migration,
        ),
        seq=seq,
    )
    # the watcher reports the object again even if it looks unchanged since its last round
    ports.cache.forget(namespace, payload.name)
    _log.info(
        "endpoint_applied",
        endpoint_id=payload.endpoint_id,
        name=payload.name,
        namespace=namespace,
        backend=ports.backend.name,
        phase=observed.phase.value,
        action=action,
    )
    return envelope
