"""Handlers of ``llmops.serving``: render, submit, report, and return (never wait for a rollout).

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. After a submission they report ``Pending`` (the watcher reports
``Ready``/``Failed`` later) or, for the manifests backend, what the backend says (``Ready``,
"written to <path>").

Bad requests (a canary the deployment mode cannot do, an object the API refuses with 4xx) get
one consistent treatment: a ``Failed`` status event with the reason is published first, so the
gateway shows the failure, and then :class:`~llmops_shared.streams.NonRetryableError` is
raised, so the runtime dead-letters the event at once (an operator can replay it after fixing
the configuration). Outages raise ``DependencyUnavailableError`` and nothing is reported: the
entry stays pending and is retried.
"""

from __future__ import annotations

import dataclasses

from pydantic import JsonValue

from llmops_serving.config import DeploymentMode, RenderFormat
from llmops_serving.ports import Manifest, Removal, ServingPorts
from llmops_serving.render import names
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.names import namespace_for
from llmops_serving.render.request import ServeRequest, serve_request
from llmops_serving.render.rollout import RolloutState, promote, rollback, rollout_state
from llmops_serving.report import deployment_status, details
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
from llmops_shared.logging import get_logger
from llmops_shared.specs import Rollout, RolloutStrategy
from llmops_shared.streams import NonRetryableError

_log = get_logger(__name__)

EndpointEvent = DeploymentRequested | DeploymentPromoted | DeploymentRolledBack | DeploymentDeleted
"""(``DeploymentMigrationRequested`` is a ``DeploymentRequested``: same fields plus ``target``.)"""

FORMAT_LABELS = {
    RenderFormat.KSERVE: "a KServe InferenceService",
    RenderFormat.BUILTIN: "the built-in Deployment + Service",
}


async def handle_serving_event(event: Event, ports: ServingPorts) -> list[Envelope]:
    """Dispatch one event of ``llmops.serving``; a refused request is reported, then raised."""
    payload = event.payload
    if not isinstance(
        payload, DeploymentRequested | DeploymentPromoted | DeploymentRolledBack | DeploymentDeleted
    ):
        _log.info("event_not_for_serving", event_type=event.type)
        return []
    try:
        if isinstance(payload, DeploymentMigrationRequested):  # before its base class
            return await handle_migration(event, payload, ports)
        if isinstance(payload, DeploymentRequested):
            return await handle_requested(event, payload, ports)
        if isinstance(payload, DeploymentPromoted):
            return await handle_promoted(event, payload, ports)
        if isinstance(payload, DeploymentRolledBack):
            return await handle_rolled_back(event, payload, ports)
        return await handle_deleted(event, payload, ports)
    except NonRetryableError as exc:
        await report_failure(event, payload, ports, str(exc))
        raise


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
    if live is not None:
        _refuse_if_owned_by_another(live, request_event, action="deploy")
        if _annotation(live, names.REQUEST_EVENT_ANNOTATION) == event.envelope.id:
            # A redelivered or replayed request: it was applied, and a promote or rollback may
            # have changed the object since. Applying it again would undo those.
            _log.info("request_already_applied", endpoint_id=request.endpoint_id)
            return []
    if ports.builtin:
        manifest = render_builtin(request, ports.options)
    else:
        stable = None
        if ports.options.deployment_mode is DeploymentMode.STANDARD:
            stable = ((live or {}).get("spec") or {}).get("predictor")
        manifest = render_inference_service(request, ports.options, stable_predictor=stable)
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
    owner = _owner(live) if live is not None else None
    if owner is not None and owner != deleted.endpoint_id:
        # The name was reused by another endpoint after this one's object went away (a late
        # or replayed delete): this endpoint's object is gone; the other one is not ours.
        _log.warning("delete_skipped_name_reused", endpoint_id=deleted.endpoint_id, owner=owner)
        gone = True
    else:
        gone = await ports.backend.delete(namespace, deleted.name)
        # objects of the other format this platform created for the endpoint (an endpoint not
        # migrated after a flag change, an interrupted migration) go with it
        await ports.backend.remove_other_format(
            namespace, deleted.name, keep=_own_format(ports), endpoint_id=deleted.endpoint_id
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
    return [
        deployment_status(
            endpoint_id=deleted.endpoint_id,
            phase=phase,
            reason=reason,
            details=base,
            correlation_id=event.envelope.correlationid,
        )
    ]


async def handle_migration(
    event: Event, migration: DeploymentMigrationRequested, ports: ServingPorts
) -> list[Envelope]:
    """Move an endpoint to ``migration.target``: apply it in that format under the same name,
    then remove the objects of the other format that this platform created for it.

    The new objects are applied before the old ones are deleted, so the endpoint has a server
    throughout. A redelivery re-applies the same manifest and finds nothing left to delete.
    A migration moves the version the endpoint serves; it never starts a canary (it is rendered
    as a full switch), and the built-in Deployment cannot hold a canary in progress (or a
    rolled-back one, whose spec is not what serves), so those are refused. Moving to KServe is
    refused while this worker renders the built-in format (the integration flag is off); moving
    to the built-in format works in any mode (``rollback integrations --remove-kserve``).
    """
    target = RenderFormat(migration.target)
    namespace = namespace_for(migration.environment)
    where = f"{namespace}/{migration.name}"
    if target is RenderFormat.KSERVE and ports.builtin:
        raise NonRetryableError(
            f"cannot migrate {where} to KServe: this serving worker renders the built-in "
            "Deployment + Service (SERVING_FRAMEWORK_ENABLED=false, the serving_framework "
            "integration flag is off, or SERVING_BACKEND=deployment); enable the serving "
            f"framework first (PUT /llm-ops/v1/integrations/configs/{migration.environment}/"
            "serving_framework with enabled=true), then migrate again"
        )
    source = _other(target)
    target_backend = ports.backend.for_format(target)
    existing = await target_backend.read(namespace, migration.name)
    if existing is not None:
        _refuse_if_owned_by_another(existing, migration, action="migrate")
        if _label(existing, names.MANAGED_BY_LABEL) != names.MANAGED_BY:
            # a migration takes over nothing it did not create (apply would, with force)
            raise NonRetryableError(
                f"cannot migrate {where} to {FORMAT_LABELS[target]}: an object of that name "
                f"exists that llm-ops did not create (no {names.MANAGED_BY_LABEL}="
                f"{names.MANAGED_BY} label); remove or rename it first"
            )
    current = await ports.backend.for_format(source).read(namespace, migration.name)
    if target is RenderFormat.BUILTIN and current is not None:
        _refuse_unless_one_version(current, migration, where)
    request = _full_switch(
        serve_request(
            migration,
            storage_uri_template=ports.storage_uri_template,
            correlation_id=event.envelope.correlationid,
            request_event_id=event.envelope.id,
        )
    )
    if target is RenderFormat.BUILTIN:
        manifest = render_builtin(request, ports.options)
    else:
        manifest = render_inference_service(request, ports.options)
    watched = target_backend is ports.backend
    if watched:
        seq = new_seq()  # before the change, as in _apply: the watcher's reports are newer
        observed = await target_backend.apply(manifest)
        ports.cache.forget(namespace, migration.name)
    else:
        observed = await target_backend.apply(manifest)
        # This worker's watcher does not observe the new format: it stops reporting the old
        # object now, and then this report (stamped after) is newer than any it made.
        ports.cache.moved_away(namespace, migration.name)
        seq = new_seq()
    removal = await ports.backend.remove_other_format(
        namespace, migration.name, keep=target, endpoint_id=migration.endpoint_id
    )
    reason = _migration_reason(target, observed.reason, removal)
    _log.info(
        "endpoint_migrated",
        endpoint_id=migration.endpoint_id,
        name=migration.name,
        namespace=namespace,
        target=target.value,
        backend=target_backend.name,
        removed=list(removal.deleted),
        left=list(removal.left),
    )
    return [
        deployment_status(
            endpoint_id=migration.endpoint_id,
            phase=observed.phase,
            reason=reason,
            details=details(
                name=migration.name,
                namespace=namespace,
                backend=target_backend.name,
                manifest=manifest,
                observed=observed,
            ),
            correlation_id=event.envelope.correlationid,
            seq=seq,
        )
    ]


def _refuse_unless_one_version(
    current: Manifest, migration: DeploymentMigrationRequested, where: str
) -> None:
    """The built-in Deployment serves one version: a canary in progress (or rolled back, whose
    spec is not what serves) cannot move there."""
    if _owner(current) not in (None, migration.endpoint_id):
        return  # not this endpoint's object: it is left alone anyway
    state = rollout_state(current)
    if state in (RolloutState.CANARY, RolloutState.ROLLED_BACK):
        raise NonRetryableError(
            f"cannot migrate {where} to the built-in Deployment + Service: its canary "
            f"rollout is {'in progress' if state is RolloutState.CANARY else 'rolled back'} "
            "and the built-in Deployment serves one version; promote the canary (or deploy "
            "again) first"
        )


def _other(target: RenderFormat) -> RenderFormat:
    return RenderFormat.BUILTIN if target is RenderFormat.KSERVE else RenderFormat.KSERVE


def _own_format(ports: ServingPorts) -> RenderFormat:
    return RenderFormat.BUILTIN if ports.builtin else RenderFormat.KSERVE


def _full_switch(request: ServeRequest) -> ServeRequest:
    """The request as a blue-green (full) switch: a migration moves what serves, at 100 %."""
    if request.spec.rollout.strategy is RolloutStrategy.BLUE_GREEN:
        return request
    # no validation again: the event's spec was validated, and only the rollout changes
    spec = request.spec.model_copy(update={"rollout": Rollout(strategy=RolloutStrategy.BLUE_GREEN)})
    return dataclasses.replace(request, spec=spec)


def _migration_reason(target: RenderFormat, applied: str | None, removal: Removal) -> str:
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
    namespace = namespace_for(payload.environment)
    info: dict[str, JsonValue] = details(
        name=payload.name, namespace=namespace, backend=ports.backend.name, manifest=None
    )
    _log.warning("deployment_refused", endpoint_id=payload.endpoint_id, reason=reason)
    await ports.sink.publish(
        deployment_status(
            endpoint_id=payload.endpoint_id,
            phase=Phase.FAILED,
            reason=reason,
            details=info,
            correlation_id=event.envelope.correlationid,
        )
    )


async def _read_or_refuse(payload: EndpointEvent, ports: ServingPorts, *, action: str) -> Manifest:
    namespace = namespace_for(payload.environment)
    live = await ports.backend.read(namespace, payload.name)
    if live is None:
        raise NonRetryableError(
            f"cannot {action} {namespace}/{payload.name}: the endpoint has no deployed object"
        )
    _refuse_if_owned_by_another(live, payload, action=action)
    return live


def _owner(manifest: Manifest) -> str | None:
    """The endpoint id an object (or the first object of a List) is labelled with."""
    return _label(manifest, names.ENDPOINT_ID_LABEL)


def _label(manifest: Manifest, key: str) -> str | None:
    target = (
        (manifest.get("items") or [manifest])[0] if manifest.get("kind") == "List" else manifest
    )
    value = ((target.get("metadata") or {}).get("labels") or {}).get(key)
    return str(value) if value else None


def _annotation(manifest: Manifest, key: str) -> str | None:
    target = (
        (manifest.get("items") or [manifest])[0] if manifest.get("kind") == "List" else manifest
    )
    value = ((target.get("metadata") or {}).get("annotations") or {}).get(key)
    return str(value) if value else None


def _refuse_if_owned_by_another(live: Manifest, payload: EndpointEvent, *, action: str) -> None:
    owner = _owner(live)
    if owner is not None and owner != payload.endpoint_id:
        raise NonRetryableError(
            f"cannot {action} {namespace_for(payload.environment)}/{payload.name} for endpoint "
            f"{payload.endpoint_id}: the object belongs to endpoint {owner}"
        )


async def _apply(
    event: Event, payload: EndpointEvent, manifest: Manifest, ports: ServingPorts, *, action: str
) -> Envelope:
    # Stamped before the change: any report the watcher makes about the changed object is then
    # newer, so the gateway never lets this "just applied" report hide an observation.
    seq = new_seq()
    observed = await ports.backend.apply(manifest)
    namespace = namespace_for(payload.environment)
    envelope = deployment_status(
        endpoint_id=payload.endpoint_id,
        phase=observed.phase,
        reason=observed.reason or action,
        details=details(
            name=payload.name,
            namespace=namespace,
            backend=ports.backend.name,
            manifest=manifest,
            observed=observed,
        ),
        correlation_id=event.envelope.correlationid,
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
