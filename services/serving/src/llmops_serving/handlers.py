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

import copy
import dataclasses

from pydantic import JsonValue

from llmops_serving.config import DeploymentMode, RenderFormat
from llmops_serving.ports import Live, Manifest, ServingPorts
from llmops_serving.render import names
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.names import namespace_for
from llmops_serving.render.request import ServeRequest, serve_request
from llmops_serving.render.rollout import RolloutState, promote, rollback, rollout_state
from llmops_serving.render.status import Observed
from llmops_serving.report import (
    FORMAT_LABELS,
    deployment_status,
    details,
    migration_info,
    migration_reason,
)
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
        if isinstance(payload, DeploymentMigrationRequested):
            await report_refusal(event, payload, ports, str(exc))
        else:
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
    own = _own_format(ports)
    source = _other(own)
    if ports.backend.observable:
        # The endpoint still has objects of the other format (deployed before a flag change):
        # they keep serving until the new ones are Ready, then the watcher removes them, as
        # after a migration.
        other = await ports.backend.for_format(source).read(request.namespace, request.name)
        if other is not None and _created_for(other, request.endpoint_id):
            manifest, applied = _moving(manifest, source)
            info = migration_info(outcome="in_progress", source=source.value, target=own.value)
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
    """Move an endpoint to ``migration.target``, in two phases.

    1. Here: apply the new object under the same name, marked ``llm-ops.io/migrating-from:
       <old format>``, and report ``Pending`` with ``details.migration`` ``in_progress``. The old
       objects keep serving. Moving to the built-in format applies the Deployment only: the
       name of its Service is held by KServe's own Service of the InferenceService until that
       is gone.
    2. In the watcher (:mod:`llmops_serving.watcher`), once the new object is observed Ready:
       remove the old objects this platform created for the endpoint, apply what was held back,
       drop the mark and report ``Ready`` (``migrated``). A new object that never becomes Ready
       leaves the old one serving.

    Refused (nothing changed; reported by :func:`report_refusal` with the phase the endpoint is
    observed in): a target object of the name that llm-ops did not create for this endpoint
    (a migration takes over nothing), a canary in progress or rolled back when moving to the
    built-in Deployment (it serves one version), a move to KServe while this worker renders the
    built-in format. A redelivery re-applies the same manifest (no new generation), or finds
    the move complete and does nothing. The manifests backend moves in one phase (one file).
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
    blocking = await target_backend.conflicts(
        namespace, migration.name, endpoint_id=migration.endpoint_id
    )
    if blocking:
        # a migration takes over nothing it did not create (apply would, with force)
        raise NonRetryableError(
            f"cannot migrate {where} to {FORMAT_LABELS[target]}: "
            f"{', '.join(blocking)} exists under its name that llm-ops did not create for this "
            "endpoint; remove or rename it first"
        )
    existing = await target_backend.read(namespace, migration.name)
    if (
        existing is not None
        and target_backend.observable
        and _annotation(existing, names.REQUEST_EVENT_ANNOTATION) == event.envelope.id
        and _annotation(existing, names.MIGRATING_FROM_ANNOTATION) is None
    ):
        _log.info("migration_already_complete", endpoint_id=migration.endpoint_id, target=target)
        return []
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
    if not target_backend.observable:
        return [await _migrate_in_one_write(event, migration, manifest, target, ports)]
    two_phase = current is not None and _created_for(current, migration.endpoint_id)
    applied = manifest
    if two_phase:
        manifest, applied = _moving(manifest, source)
    seq = new_seq()  # before the change, as in _apply: the watcher's reports are newer
    observed = await target_backend.apply(applied)
    ports.cache.forget(namespace, migration.name)
    if two_phase:
        reason = (
            f"migrating to {FORMAT_LABELS[target]}: {observed.reason or 'applied'}; "
            f"{FORMAT_LABELS[source]} keeps serving until it is Ready"
        )
    else:
        reason = f"migrated to {FORMAT_LABELS[target]}" + (
            f" ({observed.reason})" if observed.reason else ""
        )
    _log.info(
        "endpoint_migration_started",
        endpoint_id=migration.endpoint_id,
        name=migration.name,
        namespace=namespace,
        target=target.value,
        backend=target_backend.name,
        two_phase=two_phase,
    )
    info = migration_info(outcome="in_progress", source=source.value, target=target.value)
    return [
        _migration_status(
            event, migration, target_backend.name, manifest, observed, reason, info, seq
        )
    ]


async def _migrate_in_one_write(
    event: Event,
    migration: DeploymentMigrationRequested,
    manifest: Manifest,
    target: RenderFormat,
    ports: ServingPorts,
) -> Envelope:
    """The manifests backend: the endpoint's one file is replaced by the other format."""
    namespace = namespace_for(migration.environment)
    backend = ports.backend.for_format(target)
    seq = new_seq()
    observed = await backend.apply(manifest)
    removal = await ports.backend.remove_other_format(
        namespace, migration.name, keep=target, endpoint_id=migration.endpoint_id
    )
    reason = migration_reason(target, observed.reason, removal)
    info = migration_info(
        outcome="migrated", source=_other(target).value, target=target.value, reason=reason
    )
    return _migration_status(event, migration, backend.name, manifest, observed, reason, info, seq)


def _migration_status(
    event: Event,
    migration: DeploymentMigrationRequested,
    backend: str,
    manifest: Manifest,
    observed: Observed,
    reason: str,
    info: dict[str, JsonValue],
    seq: int,
) -> Envelope:
    """The report of a move just applied: the new manifest as observed, with ``info``."""
    return deployment_status(
        endpoint_id=migration.endpoint_id,
        phase=observed.phase,
        reason=reason,
        details=details(
            name=migration.name,
            namespace=namespace_for(migration.environment),
            backend=backend,
            manifest=manifest,
            observed=observed,
            migration=info,
        ),
        correlation_id=event.envelope.correlationid,
        seq=seq,
    )


def _created_for(manifest: Manifest, endpoint_id: str) -> bool:
    return (
        _label(manifest, names.MANAGED_BY_LABEL) == names.MANAGED_BY
        and _owner(manifest) == endpoint_id
    )


def _moving(manifest: Manifest, source: RenderFormat) -> tuple[Manifest, Manifest]:
    """``manifest`` marked as moving from ``source``, and the part to apply now: all of it for
    an InferenceService; the Deployment alone for the built-in format (its Service follows
    once KServe's Service of the same name has gone, see ``ServingBackend.complete``)."""
    marked = copy.deepcopy(manifest)
    primary = (marked.get("items") or [{}])[0] if marked.get("kind") == "List" else marked
    metadata = primary.setdefault("metadata", {})
    metadata.setdefault("annotations", {})[names.MIGRATING_FROM_ANNOTATION] = source.value
    if marked.get("kind") == "List":
        return marked, {**marked, "items": [primary]}
    return marked, marked


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


async def report_refusal(
    event: Event, migration: DeploymentMigrationRequested, ports: ServingPorts, reason: str
) -> None:
    """Publish a refused migration out of band, before the event is dead-lettered.

    The endpoint still serves where it was: the report carries the phase its current object is
    observed in (not ``Failed``), with ``details.migration`` ``failed`` and the reason. Only
    when the endpoint has no object at all is it reported ``Failed``."""
    target = RenderFormat(migration.target)
    source = _other(target)
    namespace = namespace_for(migration.environment)
    current: Live | None = None
    for fmt in (source, target):
        live = await ports.backend.for_format(fmt).status(namespace, migration.name)
        if live is not None and live.endpoint_id == migration.endpoint_id:
            current = live
            break
    if current is None:
        await report_failure(event, migration, ports, reason)
        return
    _log.warning("migration_refused", endpoint_id=migration.endpoint_id, reason=reason)
    info = migration_info(outcome="failed", source=source.value, target=target.value, reason=reason)
    backend = ports.backend.for_format(
        RenderFormat.KSERVE
        if current.manifest.get("kind") == "InferenceService"
        else RenderFormat.BUILTIN
    )
    await ports.sink.publish(
        deployment_status(
            endpoint_id=migration.endpoint_id,
            phase=current.observed.phase,
            reason=f"migration refused: {reason}",
            details=details(
                name=migration.name,
                namespace=namespace,
                backend=backend.name,
                manifest=current.manifest,
                observed=current.observed,
                migration=info,
            ),
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
    event: Event,
    payload: EndpointEvent,
    manifest: Manifest,
    ports: ServingPorts,
    *,
    action: str,
    applied: Manifest | None = None,
    migration: dict[str, JsonValue] | None = None,
) -> Envelope:
    """Apply ``applied`` (default: ``manifest``) and report ``manifest``."""
    # Stamped before the change: any report the watcher makes about the changed object is then
    # newer, so the gateway never lets this "just applied" report hide an observation.
    seq = new_seq()
    observed = await ports.backend.apply(manifest if applied is None else applied)
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
            migration=migration,
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
