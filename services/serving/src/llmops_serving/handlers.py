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

A deleted endpoint stays deleted: its ``DeploymentDeleted`` leaves a tombstone
(:mod:`llmops_serving.tombstones`), and any other event for it is answered as its delete
again, never applied (:func:`unless_deleted`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

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
    """Bury the endpoint (:mod:`llmops_serving.tombstones`: it is never deployed again), then
    delete its object(s); ``Deleted`` once gone (a missing one counts as gone)."""
    await ports.tombstones.bury(deleted.endpoint_id, event_id=event.envelope.id)
    return [
        await _delete(
            event,
            deleted,
            ports,
            gone="deleted",
            waiting="deletion requested; waiting for finalizers",
        )
    ]


async def _delete(
    event: Event, payload: EndpointEvent, ports: ServingPorts, *, gone: str, waiting: str
) -> Envelope:
    """Delete ``payload``'s endpoint's object(s); report ``Deleted`` (reason ``gone``) once they
    are gone, else ``Pending`` (reason ``waiting``) while finalizers run."""
    namespace = namespace_for(payload.environment)
    live = await ports.backend.read(namespace, payload.name)
    owner = owner_of(live.manifest) if live is not None else None
    if owner is not None and owner != payload.endpoint_id:
        # The name was reused by another endpoint after this one's object went away (a late
        # or replayed delete): this endpoint's object is gone; the other one is not ours.
        _log.warning("delete_skipped_name_reused", endpoint_id=payload.endpoint_id, owner=owner)
        removed = True
    else:
        removed = await ports.backend.delete(namespace, payload.name)
        # objects of the other format this platform created for the endpoint (an endpoint not
        # moved after a flag change, an interrupted move) go with it
        await ports.router.remove_other_format(
            namespace, payload.name, keep=ports.router.own, endpoint_id=payload.endpoint_id
        )
    base = details(
        name=payload.name, namespace=namespace, backend=ports.backend.name, manifest=None
    )
    if removed:
        _log.info("endpoint_deleted", endpoint_id=payload.endpoint_id, name=payload.name)
        phase, reason = Phase.DELETED, gone
    else:
        ports.cache.expect_gone(namespace, payload.name, payload.endpoint_id)
        phase, reason = Phase.PENDING, waiting
    return deployment_reply(event, payload.endpoint_id, phase, reason=reason, details=base)


E = TypeVar("E", bound=EndpointEvent)


def unless_deleted(
    handler: Callable[[Event, E, ServingPorts], Awaitable[list[Envelope]]],
) -> Callable[[Event, E, ServingPorts], Awaitable[list[Envelope]]]:
    """``handler``, except for an endpoint whose delete was handled (a tombstone): nothing is
    applied; the event is answered as a delete again (idempotent: whatever is left of the
    endpoint, an object still finalizing, goes) and reported ``Deleted`` with the refusal as
    the reason. Not dead-lettered: nothing is wrong, the endpoint is gone."""

    @functools.wraps(handler)
    async def guarded(event: Event, payload: E, ports: ServingPorts) -> list[Envelope]:
        tombstone = await ports.tombstones.buried(payload.endpoint_id)
        if tombstone is None:
            return await handler(event, payload, ports)
        await ports.tombstones.bury(payload.endpoint_id, event_id=tombstone)  # keep it longer
        refusal = (
            f"{type(payload).__name__} refused: endpoint {payload.endpoint_id} was deleted "
            f"(by event {tombstone}) and is never deployed again"
        )
        _log.warning(
            "deleted_endpoint_refused",
            endpoint_id=payload.endpoint_id,
            event_type=event.type,
            deleted_by=tombstone,
        )
        waiting = f"{refusal}; waiting for finalizers"
        return [await _delete(event, payload, ports, gone=refusal, waiting=waiting)]

    return guarded


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
        DeploymentMigrationRequested: unless_deleted(handle_move),  # before its base class
        DeploymentRequested: unless_deleted(handle_requested),
        DeploymentPromoted: unless_deleted(handle_promoted),
        DeploymentRolledBack: unless_deleted(handle_rolled_back),
        DeploymentDeleted: handle_deleted,
    },
    refused=_report_refused,
)
"""The handler of ``llmops.serving``: ``handler(event, ports)``; a refused request is reported,
then raised. Nothing but a delete reaches a deleted endpoint (:func:`unless_deleted`)."""


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
