"""The workflow watcher: polls the pipelines this worker manages and reports when their state
changes.

It lists the managed objects (labels ``app.kubernetes.io/managed-by=llm-ops`` and
``app.kubernetes.io/component=training-pipeline`` in the worker's namespace) every
``WATCH_INTERVAL_S`` and, whenever a pipeline's phase, reason, progress or nodes differ from
what it last reported, publishes a ``pipeline`` status event, plus a ``job`` status event when
the job's phase or reason changed. A pipeline it saw before that has disappeared (TTL,
deleted by hand) is reported ``Deleted``; if it disappeared unfinished, its job is reported
``Failed``. The loop and its memory are
:class:`~llmops_shared.kube.watcher.PollingWatcher`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmops_shared.events import Phase
from llmops_shared.kube.objects import annotation
from llmops_shared.kube.watcher import Key, Observation, PollingWatcher, Seen, fingerprint
from llmops_workflow.ports import Live, WorkflowBackend
from llmops_workflow.render.names import CORRELATION_ANNOTATION
from llmops_workflow.render.status import Observed
from llmops_workflow.report import details, job_status, pipeline_status, reports, reports_job

_FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})


@dataclass
class _Seen(Seen):
    job_state: tuple[str, str | None] | None = None
    """The job's last reported (phase, reason)."""
    phase: Phase = Phase.PENDING
    """The pipeline's last reported phase."""

    def forget(self) -> None:
        super().forget()
        self.job_state = None


class Watcher(PollingWatcher[Observed, _Seen, WorkflowBackend]):
    """Polls the backend (``Watcher(backend, sink, namespaces=..., interval_s=...)``) and
    publishes changes to ``sink``; also the handlers' cache."""

    async def _observe(self) -> Observation[Observed]:
        return Observation(await self._watched.observe(self._namespaces))

    def _fingerprint(self, live: Live) -> str:
        """What a report says: phase, reason, progress, nodes, and the spec (a terminate)."""
        observed = live.observed
        model = observed.registered_model
        return fingerprint(
            observed.phase.value,
            observed.reason,
            observed.progress,
            observed.nodes,
            observed.started_at,
            observed.finished_at,
            model.model_dump(mode="json") if model else None,
            live.manifest.get("spec"),
        )

    def _unseen(self, owner: str) -> _Seen:
        return _Seen(owner)

    async def _report(self, key: Key, live: Live, fingerprint: str, seen: _Seen | None) -> int:
        assert live.owner is not None
        observed = live.observed
        job_state = seen.job_state if seen is not None else None
        state = (observed.phase.value, observed.reason)
        envelopes = reports(
            job_id=live.owner,
            workflow_name=live.name,
            namespace=live.namespace,
            backend=self._watched.name,
            manifest=live.manifest,
            observed=observed,
            correlation_id=annotation(live.manifest, CORRELATION_ANNOTATION),
            job=state != job_state,  # the job's report only when its state changed
        )
        if reports_job(observed):
            job_state = state
        for envelope in envelopes:
            await self._sink.publish(envelope)
        self._seen[key] = _Seen(live.owner, fingerprint, job_state, observed.phase)
        self._log.info(
            "pipeline_observed",
            job_id=live.owner,
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
                entity_id=name,
                phase=Phase.DELETED,
                reason="the workflow is gone (TTL or deleted)",
                details=details(
                    job_id=seen.owner,
                    workflow_name=name,
                    namespace=namespace,
                    backend=self._watched.name,
                    manifest=None,
                    observed=Observed(Phase.DELETED),
                ),
                correlation_id=None,
            )
        ]
        if seen.phase not in _FINISHED:
            envelopes.append(
                job_status(
                    entity_id=seen.owner,
                    phase=Phase.FAILED,
                    reason=f"the workflow {name} was deleted before it finished",
                    correlation_id=None,
                )
            )
        for envelope in envelopes:
            await self._sink.publish(envelope)
        self._log.info("pipeline_gone", job_id=seen.owner, name=name, namespace=namespace)
        return len(envelopes)
