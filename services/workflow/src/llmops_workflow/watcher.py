"""The watcher: polls the pipelines this worker manages and reports when their state changes.

Handlers submit and return; this task, running next to the consumer in the same process,
lists the managed objects (labels ``app.kubernetes.io/managed-by=llm-ops`` and
``app.kubernetes.io/component=training-pipeline`` in the worker's namespace) every
``WATCH_INTERVAL_S`` and, whenever a pipeline's phase, reason, progress or nodes differ from
what it last reported, publishes a ``pipeline`` status event, plus a ``job`` status event when
the job's phase or reason changed. A pipeline it saw before that has disappeared (TTL,
deleted by hand) is reported ``Deleted``; if it disappeared unfinished, its job is reported
``Failed``.

The memory is in process: after a restart every pipeline is reported once more, which is
harmless (the gateway orders reports by ``seq``). An outage of the cluster skips a round and
is logged; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from llmops_shared.events import Envelope, Phase
from llmops_shared.logging import get_logger
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_workflow.ports import Live, StatusSink, WorkflowBackend
from llmops_workflow.render.names import CORRELATION_ANNOTATION
from llmops_workflow.render.status import Observed
from llmops_workflow.report import JOB_PHASES, details, job_status, pipeline_status

Key = tuple[str, str]  # (namespace, name)

_log = get_logger(__name__)

_FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


@dataclass
class _Seen:
    job_id: str
    fingerprint: str | None  # None: report the next observation whatever it is
    job_state: tuple[str, str | None] | None
    phase: Phase


class Watcher:
    """Polls ``backend`` and publishes changes to ``sink``; also the handlers' cache."""

    def __init__(
        self,
        backend: WorkflowBackend,
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
        self.rounds = 0

    # ------------------------------------------------------------------ ObservationCache

    def forget(self, namespace: str, name: str) -> None:
        seen = self._seen.get((namespace, name))
        if seen is not None:
            seen.fingerprint = None
            seen.job_state = None

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        _log.info("watcher_started", namespaces=self._namespaces, interval_s=self._interval)
        while not stop.is_set():
            try:
                await self.poll_once()
            except (DependencyUnavailableError, NonRetryableError) as exc:
                _log.warning("watcher_round_failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - e.g. Redis down while publishing: what
                # was not published is published next round; a crashed watcher stops the worker.
                _log.error("watcher_round_crashed", error=repr(exc), exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
        _log.info("watcher_stopped")

    async def poll_once(self) -> int:
        """One round: observe, publish what changed; returns the number of events published."""
        lives = await self._backend.observe(self._namespaces)
        published = 0
        present: set[Key] = set()
        for live in lives:
            key = (live.namespace, live.name)
            present.add(key)
            if not live.job_id:
                continue
            published += await self._report_live(key, live)
        for key in [k for k in self._seen if k not in present]:
            published += await self._report_gone(key, self._seen[key])
            del self._seen[key]  # only once reported: a failed publish is retried next round
        self.rounds += 1
        return published

    async def _report_live(self, key: Key, live: Live) -> int:
        assert live.job_id is not None
        observed = live.observed
        fingerprint = _fingerprint(live)
        seen = self._seen.get(key)
        if seen is not None and seen.fingerprint == fingerprint:
            return 0
        correlation = _correlation(live)
        envelopes: list[Envelope] = [
            pipeline_status(
                workflow_name=live.name,
                phase=observed.phase,
                reason=observed.reason,
                details=details(
                    job_id=live.job_id,
                    workflow_name=live.name,
                    namespace=live.namespace,
                    backend=self._backend.name,
                    manifest=live.manifest,
                    observed=observed,
                ),
                correlation_id=correlation,
            )
        ]
        job_state = seen.job_state if seen is not None else None
        if observed.phase in JOB_PHASES and not observed.terminating:
            state = (observed.phase.value, observed.reason)
            if state != job_state:
                envelopes.append(
                    job_status(
                        job_id=live.job_id,
                        phase=observed.phase,
                        reason=observed.reason,
                        correlation_id=correlation,
                    )
                )
                job_state = state
        for envelope in envelopes:
            await self._sink.publish(envelope)
        self._seen[key] = _Seen(live.job_id, fingerprint, job_state, observed.phase)
        _log.info(
            "pipeline_observed",
            job_id=live.job_id,
            name=live.name,
            namespace=live.namespace,
            phase=observed.phase.value,
            progress=observed.progress,
            reason=observed.reason,
        )
        return len(envelopes)

    async def _report_gone(self, key: Key, seen: _Seen) -> int:
        namespace, name = key
        envelopes = [
            pipeline_status(
                workflow_name=name,
                phase=Phase.DELETED,
                reason="the workflow is gone (TTL or deleted)",
                details=details(
                    job_id=seen.job_id,
                    workflow_name=name,
                    namespace=namespace,
                    backend=self._backend.name,
                    manifest=None,
                    observed=Observed(Phase.DELETED),
                ),
                correlation_id=None,
            )
        ]
        if seen.phase not in _FINISHED:
            envelopes.append(
                job_status(
                    job_id=seen.job_id,
                    phase=Phase.FAILED,
                    reason=f"the workflow {name} was deleted before it finished",
                    correlation_id=None,
                )
            )
        for envelope in envelopes:
            await self._sink.publish(envelope)
        _log.info("pipeline_gone", job_id=seen.job_id, name=name, namespace=namespace)
        return len(envelopes)


def _fingerprint(live: Live) -> str:
    """What a report says: phase, reason, progress, nodes, and the spec (a terminate)."""
    observed = live.observed
    return json.dumps(
        [
            observed.phase.value,
            observed.reason,
            observed.progress,
            observed.nodes,
            observed.started_at,
            observed.finished_at,
            observed.registered_model.model_dump(mode="json")
            if observed.registered_model
            else None,
            live.manifest.get("spec"),
        ],
        sort_keys=True,
        default=str,
    )


def _correlation(live: Live) -> str | None:
    """The request that created the pipeline (an annotation the renderer writes)."""
    primary = live.manifest
    if primary.get("kind") == "List":
        primary = (primary.get("items") or [{}])[0]
    annotations = (primary.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(CORRELATION_ANNOTATION)
    return str(value) if value else None
