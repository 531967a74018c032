"""Moving an endpoint between the formats (a KServe InferenceService, the built-in Deployment +
Service), in two phases.

1. A handler applies the new object under the same name, marked ``llm-ops.io/migrating-from:
   <old format>``, and reports ``Pending`` with ``details.migration`` ``in_progress``; the old
   objects keep serving. Moving to the built-in format applies the Deployment only: the name of
   its Service is held by KServe's own Service of the InferenceService until that is gone.
   :func:`handle_move` does this for ``DeploymentMigrationRequested``; a plain
   ``DeploymentRequested`` for an endpoint still on the other format's objects (deployed before
   a flag change) does it too (:func:`left_behind`, :func:`marked`).
2. The watcher, each round, reports a new object marked as moving instead of the old one
   (:func:`advance`): ``Pending`` (``in_progress``, or ``failed`` while the new object is
   observed Failed: the old one keeps serving), and once the new object is observed Ready it
   removes the old objects this platform created for the endpoint, applies what was held back,
   drops the mark and reports ``Ready`` (``migrated``). Every replica does this, idempotently
   (deletes carry the checked uid). A new object that never becomes Ready leaves the old one
   serving.

A refused move (:func:`report_refusal`) changes nothing and reports the endpoint in the phase
its current object is observed in. The manifests backend moves in one phase (one file).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from llmops_serving.config import RenderFormat
from llmops_serving.owners import created_for, owner_of
from llmops_serving.ports import Live, Manifest, ServingPorts
from llmops_serving.render import names
from llmops_serving.render.builtin import render_builtin
from llmops_serving.render.inference_service import render_inference_service
from llmops_serving.render.request import ServeRequest, serve_request
from llmops_serving.render.rollout import RolloutState, rollout_state
from llmops_serving.render.status import Observed
from llmops_serving.report import (
    FORMAT_LABELS,
    deployment_reply,
    details,
    move_info,
    move_reason,
    report_failure,
)
from llmops_serving.router import FormatRouter, format_of, other_format
from llmops_shared.events import DeploymentMigrationRequested, Envelope, Event, Phase, new_seq
from llmops_shared.events.payloads.details import FormatMove
from llmops_shared.kube.objects import annotation
from llmops_shared.logging import get_logger
from llmops_shared.specs import Rollout, RolloutStrategy
from llmops_shared.streams import NonRetryableError

_log = get_logger(__name__)


async def handle_move(
    event: Event, move: DeploymentMigrationRequested, ports: ServingPorts
) -> list[Envelope]:
    """Phase 1 of a move to ``move.target`` (see the module).

    Refused (nothing changed): a target object of the name that llm-ops did not create for this
    endpoint (a move takes over nothing), a canary in progress or rolled back when moving to
    the built-in Deployment (it serves one version), a move to KServe while this worker renders
    the built-in format. A redelivery re-applies the same manifest (no new generation), or
    finds the move complete and does nothing.
    """
    target = RenderFormat(move.target)
    namespace = names.namespace_for(move.environment)
    where = f"{namespace}/{move.name}"
    if target is RenderFormat.KSERVE and ports.builtin:
        raise NonRetryableError(
            f"cannot migrate {where} to KServe: this serving worker renders the built-in "
            "Deployment + Service (SERVING_FRAMEWORK_ENABLED=false, the serving_framework "
            "integration flag is off, or SERVING_BACKEND=deployment); enable the serving "
            f"framework first (PUT /llm-ops/v1/integrations/configs/{move.environment}/"
            "serving_framework with enabled=true), then migrate again"
        )
    source = other_format(target)
    target_backend = ports.router.of(target)
    blocking = await target_backend.conflicts(namespace, move.name, endpoint_id=move.endpoint_id)
    if blocking:
        # a move takes over nothing it did not create (apply would, with force)
        raise NonRetryableError(
            f"cannot migrate {where} to {FORMAT_LABELS[target]}: "
            f"{', '.join(blocking)} exists under its name that llm-ops did not create for this "
            "endpoint; remove or rename it first"
        )
    existing = await target_backend.read(namespace, move.name)
    if (
        existing is not None
        and target_backend.observable
        and annotation(existing.manifest, names.REQUEST_EVENT_ANNOTATION) == event.envelope.id
        and annotation(existing.manifest, names.MIGRATING_FROM_ANNOTATION) is None
    ):
        _log.info("migration_already_complete", endpoint_id=move.endpoint_id, target=target)
        return []
    live = await ports.router.of(source).read(namespace, move.name)
    current = live.manifest if live is not None else None
    if target is RenderFormat.BUILTIN and current is not None:
        _refuse_unless_one_version(current, move, where)
    request = _full_switch(
        serve_request(
            move,
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
        return [await _move_in_one_write(event, move, manifest, target, ports)]
    two_phase = current is not None and created_for(current, move.endpoint_id)
    applied = manifest
    if two_phase:
        manifest, applied = marked(manifest, source)
    seq = new_seq()  # before the change, as in the handlers: the watcher's reports are newer
    observed = await target_backend.apply(applied)
    ports.cache.forget(namespace, move.name)
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
        endpoint_id=move.endpoint_id,
        name=move.name,
        namespace=namespace,
        target=target.value,
        backend=target_backend.name,
        two_phase=two_phase,
    )
    info = move_info(outcome="in_progress", source=source.value, target=target.value)
    return [_move_status(event, move, target_backend.name, manifest, observed, reason, info, seq)]


async def _move_in_one_write(
    event: Event,
    move: DeploymentMigrationRequested,
    manifest: Manifest,
    target: RenderFormat,
    ports: ServingPorts,
) -> Envelope:
    """The manifests backend: the endpoint's one file is replaced by the other format."""
    namespace = names.namespace_for(move.environment)
    backend = ports.router.of(target)
    seq = new_seq()
    observed = await backend.apply(manifest)
    removal = await ports.router.remove_other_format(
        namespace, move.name, keep=target, endpoint_id=move.endpoint_id
    )
    reason = move_reason(target, observed.reason, removal)
    info = move_info(
        outcome="migrated", source=other_format(target).value, target=target.value, reason=reason
    )
    return _move_status(event, move, backend.name, manifest, observed, reason, info, seq)


def _move_status(
    event: Event,
    move: DeploymentMigrationRequested,
    backend: str,
    manifest: Manifest,
    observed: Observed,
    reason: str,
    info: FormatMove,
    seq: int,
) -> Envelope:
    """The report of a move just applied: the new manifest as observed, with ``info``."""
    return deployment_reply(
        event,
        move.endpoint_id,
        observed.phase,
        reason=reason,
        details=details(
            name=move.name,
            namespace=names.namespace_for(move.environment),
            backend=backend,
            manifest=manifest,
            observed=observed,
            migration=info,
        ),
        seq=seq,
    )


async def left_behind(
    router: FormatRouter, namespace: str, name: str, endpoint_id: str
) -> RenderFormat | None:
    """The other format, when the endpoint still has objects of it that this platform created
    (deployed before a flag change): a request in this worker's format moves it from there."""
    if not router.backend.observable:
        return None
    other = await router.of(router.other).read(namespace, name)
    if other is not None and created_for(other.manifest, endpoint_id):
        return router.other
    return None


def marked(manifest: Manifest, source: RenderFormat) -> tuple[Manifest, Manifest]:
    """``manifest`` marked as moving from ``source``, and the part to apply now: all of it for
    an InferenceService; the Deployment alone for the built-in format (its Service follows
    once KServe's Service of the same name has gone, see ``ServingBackend.complete``)."""
    out = copy.deepcopy(manifest)
    primary = (out.get("items") or [{}])[0] if out.get("kind") == "List" else out
    metadata = primary.setdefault("metadata", {})
    metadata.setdefault("annotations", {})[names.MIGRATING_FROM_ANNOTATION] = source.value
    if out.get("kind") == "List":
        return out, {**out, "items": [primary]}
    return out, out


def moving_from(manifest: Manifest) -> RenderFormat | None:
    """The old format of an endpoint whose new object this is, while it is being moved."""
    value = annotation(manifest, names.MIGRATING_FROM_ANNOTATION)
    try:
        return RenderFormat(value) if value else None
    except ValueError:
        return None


def _refuse_unless_one_version(
    current: Manifest, move: DeploymentMigrationRequested, where: str
) -> None:
    """The built-in Deployment serves one version: a canary in progress (or rolled back, whose
    spec is not what serves) cannot move there."""
    if owner_of(current) not in (None, move.endpoint_id):
        return  # not this endpoint's object: it is left alone anyway
    state = rollout_state(current)
    if state in (RolloutState.CANARY, RolloutState.ROLLED_BACK):
        raise NonRetryableError(
            f"cannot migrate {where} to the built-in Deployment + Service: its canary "
            f"rollout is {'in progress' if state is RolloutState.CANARY else 'rolled back'} "
            "and the built-in Deployment serves one version; promote the canary (or deploy "
            "again) first"
        )


def _full_switch(request: ServeRequest) -> ServeRequest:
    """The request as a blue-green (full) switch: a move moves what serves, at 100 %."""
    if request.spec.rollout.strategy is RolloutStrategy.BLUE_GREEN:
        return request
    # no validation again: the event's spec was validated, and only the rollout changes
    spec = request.spec.model_copy(update={"rollout": Rollout(strategy=RolloutStrategy.BLUE_GREEN)})
    return dataclasses.replace(request, spec=spec)


async def report_refusal(
    event: Event, move: DeploymentMigrationRequested, ports: ServingPorts, reason: str
) -> None:
    """Publish a refused move out of band, before the event is dead-lettered.

    The endpoint still serves where it was: the report carries the phase its current object is
    observed in (not ``Failed``), with ``details.migration`` ``failed`` and the reason. Only
    when the endpoint has no object at all is it reported ``Failed``."""
    target = RenderFormat(move.target)
    source = other_format(target)
    namespace = names.namespace_for(move.environment)
    current: Live | None = None
    for fmt in (source, target):
        live = await ports.router.of(fmt).read(namespace, move.name)
        if live is not None and live.owner == move.endpoint_id:
            current = live
            break
    if current is None:
        await report_failure(event, move, ports, reason)
        return
    _log.warning("migration_refused", endpoint_id=move.endpoint_id, reason=reason)
    info = move_info(outcome="failed", source=source.value, target=target.value, reason=reason)
    backend = ports.router.of(format_of(current.manifest))
    await ports.sink.publish(
        deployment_reply(
            event,
            move.endpoint_id,
            current.observed.phase,
            reason=f"migration refused: {reason}",
            details=details(
                name=move.name,
                namespace=namespace,
                backend=backend.name,
                manifest=current.manifest,
                observed=current.observed,
                migration=info,
            ),
        )
    )


# ---------------------------------------------------------------------- phase 2: the watcher


@dataclass(frozen=True)
class Step:
    """What the watcher reports about a move this round."""

    phase: Phase
    reason: str
    outcome: str
    manifest: Manifest
    backend: str
    done: bool


async def advance(router: FormatRouter, live: Live) -> Step:
    """Report a move in progress, and finish it once the new object (``live``, which has an
    owner and is marked as moving) is Ready."""
    target = format_of(live.manifest)
    source = moving_from(live.manifest) or other_format(target)
    observed = live.observed
    if observed.phase is not Phase.READY:
        reason = (
            f"migrating to {FORMAT_LABELS[target]}: the new object is {observed.phase.value}"
            + (f" ({observed.reason})" if observed.reason else "")
            + f"; {FORMAT_LABELS[source]} keeps serving"
        )
        outcome = "failed" if observed.phase is Phase.FAILED else "in_progress"
        return Step(Phase.PENDING, reason, outcome, live.manifest, router.of(target).name, False)
    try:
        reason, manifest, done = await _finish(router, live, target, source)
    except NonRetryableError as exc:  # e.g. the held-back Service refused: say why
        reason = f"cannot finish the migration: {exc}"
        return Step(Phase.PENDING, reason, "failed", live.manifest, router.of(target).name, False)
    if done:
        return Step(Phase.READY, reason, "migrated", manifest, router.of(target).name, True)
    return Step(Phase.PENDING, reason, "in_progress", manifest, router.of(target).name, False)


async def _finish(
    router: FormatRouter, live: Live, target: RenderFormat, source: RenderFormat
) -> tuple[str, Manifest, bool]:
    """Remove the old objects, then complete the new ones: (reason, manifest, done)."""
    assert live.owner is not None
    endpoint_id = live.owner
    removal = await router.remove_other_format(
        live.namespace, live.name, keep=target, endpoint_id=endpoint_id
    )
    old = await router.of(source).read(live.namespace, live.name)
    if old is not None and owner_of(old.manifest) == endpoint_id:
        # still finalizing (KServe's finalizer on an InferenceService)
        return (
            f"migrating to {FORMAT_LABELS[target]}: waiting for {FORMAT_LABELS[source]} "
            "to finish deleting",
            live.manifest,
            False,
        )
    manifest, waiting = await router.of(target).complete(live.manifest, endpoint_id=endpoint_id)
    if waiting is not None:
        return f"migrating to {FORMAT_LABELS[target]}: {waiting}", live.manifest, False
    _log.info(
        "endpoint_migrated",
        endpoint_id=endpoint_id,
        name=live.name,
        namespace=live.namespace,
        target=target.value,
        removed=list(removal.deleted),
        left=list(removal.left),
    )
    return move_reason(target, live.observed.reason, removal), manifest, True
