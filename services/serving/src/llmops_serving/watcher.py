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

An endpoint migrated to a format this watcher does not observe (the KServe backend moving one to
the built-in Deployment) is *moved away*: its old object is no longer reported, and its removal
is not reported as ``Deleted`` (the endpoint is not gone, it lives on in the other format).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from llmops_serving.ports import Live, ServingBackend, StatusSink
from llmops_serving.render.names import CORRELATION_ANNOTATION
from llmops_serving.report import deployment_status, details
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
        reports = 0
        present: set[Key] = set()
        for live in lives:
            key = (live.namespace, live.name)
            present.add(key)
            if not live.endpoint_id or key in self._moved:
                continue
            fingerprint = _fingerprint(live)
            seen = self._seen.get(key)
            if seen is not None and seen.fingerprint == fingerprint:
                continue
            await self._publish_live(live)
            if key not in self._moved:  # moved away while the report was being published
                self._seen[key] = _Seen(live.endpoint_id, fingerprint)
            reports += 1
        for key in [k for k in self._seen if k not in present]:
            seen = self._seen.get(key)
            if seen is None or key in self._moved:  # moved away: the endpoint is not gone
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
