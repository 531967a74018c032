"""The watcher: polls the objects this worker manages and reports when their state changes.

Handlers submit and return; this task, running next to the consumer in the same process,
lists the managed objects (label ``app.kubernetes.io/managed-by=llm-ops`` in the
``llm-ops-<env>`` namespaces) every ``WATCH_INTERVAL_S`` and publishes a deployment status
event whenever an object's phase, reason, URL, conditions or traffic differ from what it last
reported: ``Ready`` (with URL and traffic per revision), ``Failed`` (the Ready condition's
reason and message) or ``Pending``; and ``Deleted`` for an object it saw before (or a handler
told it about) that has disappeared.

The memory is in process: after a restart every object is reported once more, which is
harmless (the gateway orders reports by ``seq``). An outage of the cluster skips a round and
is logged; it never stops the worker.

The watcher also finishes moves between formats (phase 2 of a migration, see
:func:`llmops_serving.handlers.handle_migration`). Each round it lists the endpoints' objects of
the other format too; a new object marked ``llm-ops.io/migrating-from`` (in either format) is
reported instead of the old one (``Pending``, ``details.migration`` ``in_progress``, or
``failed`` while the new object is observed Failed: the old one keeps serving), and once it is
observed Ready the watcher removes the old objects this platform created for the endpoint,
applies what was held back (the built-in Service), drops the mark and reports ``Ready``
(``migrated``). Every replica does this, idempotently (deletes carry the checked uid).

An object that disappeared while the endpoint has an object of the other format is not reported
``Deleted``: the endpoint lives on there (a migration finished by this or another replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from llmops_serving.config import RenderFormat
from llmops_serving.ports import Live, Manifest, ServingBackend, StatusSink
from llmops_serving.render.names import (
    CORRELATION_ANNOTATION,
    ENDPOINT_ID_LABEL,
    MIGRATING_FROM_ANNOTATION,
)
from llmops_serving.report import (
    FORMAT_LABELS,
    deployment_status,
    details,
    migration_info,
    migration_reason,
)
from llmops_shared.events import Phase
from llmops_shared.logging import get_logger
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError

Key = tuple[str, str]  # (namespace, name)

_log = get_logger(__name__)


@dataclass
class _Seen:
    endpoint_id: str
    fingerprint: str | None  # None: report the next observation whatever it is


class Watcher:
    """Polls ``backend`` and publishes changes to ``sink``; also the handlers' cache."""

    def __init__(
        self,
        backend: ServingBackend,
        sink: StatusSink,
        *,
        namespaces: Sequence[str],
        interval_s: float,
    ) -> None:
        self._backend = backend
        own = (
            RenderFormat.KSERVE
            if backend.for_format(RenderFormat.KSERVE) is backend
            else RenderFormat.BUILTIN
        )
        self._other = backend.for_format(other_format(own))
        self._sink = sink
        self._namespaces = list(namespaces)
        self._interval = interval_s
        self._seen: dict[Key, _Seen] = {}
        self._moved: dict[Key, int] = {}  # key -> rounds started when it was moved away
        self._started = 0
        self.rounds = 0

    # ------------------------------------------------------------------ ObservationCache

    def forget(self, namespace: str, name: str) -> None:
        self._moved.pop((namespace, name), None)
        seen = self._seen.get((namespace, name))
        if seen is not None:
            seen.fingerprint = None

    def expect_gone(self, namespace: str, name: str, endpoint_id: str) -> None:
        self._moved.pop((namespace, name), None)
        self._seen[(namespace, name)] = _Seen(endpoint_id, None)

    def moved_away(self, namespace: str, name: str) -> None:
        # Synchronous, like every check in poll_once before a report is stamped: a report made
        # after this call is suppressed, one made before has an older seq than the handler's.
        self._moved[(namespace, name)] = self._started
        self._seen.pop((namespace, name), None)

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        _log.info("watcher_started", namespaces=self._namespaces, interval_s=self._interval)
        while not stop.is_set():
            try:
                await self.poll_once()
            except (DependencyUnavailableError, NonRetryableError) as exc:
                _log.warning("watcher_round_failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down while publishing:
                # what was not published is published next round (state is updated only after
                # a publish succeeds); a crashed watcher would stop the whole worker.
                _log.error("watcher_round_crashed", error=repr(exc), exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
        _log.info("watcher_stopped")

    async def poll_once(self) -> int:
        """One round: observe, publish what changed; returns the number of reports."""
        self._started += 1
        started = self._started
        lives = await self._backend.observe(self._namespaces)
        others = await self._other.observe(self._namespaces)
        moving = {
            (live.namespace, live.name): live
            for live in [*lives, *others]
            if live.endpoint_id and migrating_from(live.manifest) is not None
        }
        elsewhere = {(live.namespace, live.name) for live in others if live.endpoint_id}
        reports = 0
        present: set[Key] = set(moving)
        for live in lives:
            key = (live.namespace, live.name)
            present.add(key)
            if not live.endpoint_id or key in self._moved or key in moving:
                continue  # (an old object whose successor is coming up is not reported)
            fingerprint = _fingerprint(live)
            seen = self._seen.get(key)
            if seen is not None and seen.fingerprint == fingerprint:
                continue
            await self._publish_live(live)
            if key not in self._moved:  # moved away while the report was being published
                self._seen[key] = _Seen(live.endpoint_id, fingerprint)
            reports += 1
        for key, live in moving.items():
            reports += await self._progress(key, live)
        for key in [k for k in self._seen if k not in present]:
            seen = self._seen.get(key)
            if seen is None or key in self._moved or key in elsewhere:
                # moved away, or lives on in the other format: the endpoint is not gone
                self._seen.pop(key, None)
                continue
            await self._publish_deleted(key, seen.endpoint_id)
            self._seen.pop(key, None)  # only once the report is out: a failed publish is retried
            reports += 1
        for key, moved_at in list(self._moved.items()):
            # gone in a listing made after the move: no more silence needed
            if key not in present and moved_at < started:
                del self._moved[key]
        self.rounds += 1
        return reports

    async def _progress(self, key: Key, live: Live) -> int:
        """Report a move in progress; finish it once the new object is Ready. 1 if reported."""
        assert live.endpoint_id is not None
        namespace, name = key
        target = format_of(live.manifest)
        source = migrating_from(live.manifest) or other_format(target)
        target_backend = self._backend.for_format(target)
        observed = live.observed
        manifest = live.manifest
        outcome = "in_progress"
        phase = Phase.PENDING
        fingerprint: str | None = None
        if observed.phase is Phase.READY:
            try:
                reason, manifest, done = await self._finish(live, target, source)
            except NonRetryableError as exc:  # e.g. the held-back Service refused: say why
                reason, done = f"cannot finish the migration: {exc}", False
                outcome = "failed"
            if done:
                phase, outcome = Phase.READY, "migrated"
                # the next observation of the unmarked object is not a change
                fingerprint = _fingerprint(live)
        else:
            if observed.phase is Phase.FAILED:
                outcome = "failed"
            reason = (
                f"migrating to {FORMAT_LABELS[target]}: the new object is "
                f"{observed.phase.value}"
                + (f" ({observed.reason})" if observed.reason else "")
                + f"; {FORMAT_LABELS[source]} keeps serving"
            )
        info = migration_info(
            outcome=outcome, source=source.value, target=target.value, reason=reason
        )
        report_fingerprint = json.dumps(
            [phase.value, reason, outcome, live.manifest.get("spec")], sort_keys=True, default=str
        )
        seen = self._seen.get(key)
        if seen is not None and seen.fingerprint in (report_fingerprint, fingerprint):
            return 0
        await self._sink.publish(
            deployment_status(
                endpoint_id=live.endpoint_id,
                phase=phase,
                reason=reason,
                details=details(
                    name=name,
                    namespace=namespace,
                    backend=target_backend.name,
                    manifest=manifest,
                    observed=observed,
                    migration=info,
                ),
                correlation_id=_correlation(live),
            )
        )
        _log.info(
            "migration_observed",
            endpoint_id=live.endpoint_id,
            name=name,
            namespace=namespace,
            target=target.value,
            outcome=outcome,
            reason=reason,
        )
        self._seen[key] = _Seen(live.endpoint_id, fingerprint or report_fingerprint)
        return 1

    async def _finish(
        self, live: Live, target: RenderFormat, source: RenderFormat
    ) -> tuple[str, Manifest, bool]:
        """Remove the old objects, then complete the new ones: (reason, manifest, done)."""
        assert live.endpoint_id is not None
        endpoint_id = live.endpoint_id
        removal = await self._backend.remove_other_format(
            live.namespace, live.name, keep=target, endpoint_id=endpoint_id
        )
        old = await self._backend.for_format(source).read(live.namespace, live.name)
        if old is not None and _endpoint_of(old) == endpoint_id:
            # still finalizing (KServe's finalizer on an InferenceService)
            return (
                f"migrating to {FORMAT_LABELS[target]}: waiting for {FORMAT_LABELS[source]} "
                "to finish deleting",
                live.manifest,
                False,
            )
        manifest, waiting = await self._backend.for_format(target).complete(
            live.manifest, endpoint_id=endpoint_id
        )
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
        return migration_reason(target, live.observed.reason, removal), manifest, True

    async def _publish_live(self, live: Live) -> None:
        assert live.endpoint_id is not None
        observed = live.observed
        await self._sink.publish(
            deployment_status(
                endpoint_id=live.endpoint_id,
                phase=observed.phase,
                reason=observed.reason,
                details=details(
                    name=live.name,
                    namespace=live.namespace,
                    backend=self._backend.name,
                    manifest=live.manifest,
                    observed=observed,
                ),
                correlation_id=_correlation(live),
            )
        )
        _log.info(
            "deployment_observed",
            endpoint_id=live.endpoint_id,
            name=live.name,
            namespace=live.namespace,
            phase=observed.phase.value,
            reason=observed.reason,
        )

    async def _publish_deleted(self, key: Key, endpoint_id: str) -> None:
        namespace, name = key
        await self._sink.publish(
            deployment_status(
                endpoint_id=endpoint_id,
                phase=Phase.DELETED,
                reason="the object is gone",
                details=details(
                    name=name, namespace=namespace, backend=self._backend.name, manifest=None
                ),
                correlation_id=None,
            )
        )
        _log.info("deployment_gone", endpoint_id=endpoint_id, name=name, namespace=namespace)


def format_of(manifest: Manifest) -> RenderFormat:
    """The format of an endpoint's manifest (an InferenceService, or the built-in objects)."""
    if manifest.get("kind") == "InferenceService":
        return RenderFormat.KSERVE
    return RenderFormat.BUILTIN


def other_format(fmt: RenderFormat) -> RenderFormat:
    return RenderFormat.BUILTIN if fmt is RenderFormat.KSERVE else RenderFormat.KSERVE


def _primary(manifest: Manifest) -> Manifest:
    if manifest.get("kind") == "List":
        items: list[Manifest] = manifest.get("items") or [{}]
        return items[0]
    return manifest


def migrating_from(manifest: Manifest) -> RenderFormat | None:
    """The old format of an endpoint whose new object this is, while it is being moved."""
    annotations = (_primary(manifest).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(MIGRATING_FROM_ANNOTATION)
    try:
        return RenderFormat(str(value)) if value else None
    except ValueError:
        return None


def _endpoint_of(manifest: Manifest) -> str | None:
    labels = (_primary(manifest).get("metadata") or {}).get("labels") or {}
    value = labels.get(ENDPOINT_ID_LABEL)
    return str(value) if value else None


def _fingerprint(live: Live) -> str:
    """What a report says, minus timestamps that change without the state changing."""
    observed = live.observed
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in observed.conditions
    ]
    return json.dumps(
        [
            observed.phase.value,
            observed.reason,
            observed.url,
            conditions,
            observed.traffic,
            live.manifest.get("spec"),
        ],
        sort_keys=True,
        default=str,
    )


def _correlation(live: Live) -> str | None:
    """The request that last changed the object (an annotation the renderer writes)."""
    annotations = (live.manifest.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(CORRELATION_ANNOTATION)
    return str(value) if value else None
