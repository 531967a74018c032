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

The watcher keeps the worker's ledger (:mod:`llmops_workflow.ledger`) up to date: a pipeline it
sees is ``watched``, one it sees ended gets its outcome (the tombstone that stops a replayed
submission from running it again), one reported gone is no longer watched (and, if it was
unfinished, ends ``Failed``). Before its first round it takes every watched record of its
backend and namespaces as if it had seen them, so that a pipeline deleted while the worker was
down is reported gone (its job ``Failed``: "deleted while the workflow worker was down") instead
of never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmops_shared.events import Phase, new_seq
from llmops_shared.kube.objects import annotation
from llmops_shared.kube.watcher import Key, Observation, PollingWatcher, Seen, fingerprint
from llmops_shared.streams import StatusSink
from llmops_workflow.ledger import ENDED, Outcome, Transitions, has_ended
from llmops_workflow.ports import Live, PipelineLedger, WorkflowBackend
from llmops_workflow.render.names import CORRELATION_ANNOTATION
from llmops_workflow.render.status import Observed
from llmops_workflow.report import details, job_status, pipeline_status, reports, reports_job


@dataclass
class _Seen(Seen):
    job_state: tuple[str, str | None] | None = None
    """The job's last reported (phase, reason)."""
    phase: Phase = Phase.PENDING
    """The pipeline's last reported phase."""
    recovered: bool = False
    """Taken from the ledger at start-up, not seen by this process yet."""

    def forget(self) -> None:
        super().forget()
        self.job_state = None


class Watcher(PollingWatcher[Observed, _Seen, WorkflowBackend]):
    """Polls the backend (``Watcher(backend, sink, namespaces=..., interval_s=...,
    ledger=...)``) and publishes changes to ``sink``; also the handlers' cache."""

    def __init__(
        self,
        watched: WorkflowBackend,
        sink: StatusSink,
        *,
        namespaces: Sequence[str],
        interval_s: float,
        ledger: PipelineLedger,
    ) -> None:
        super().__init__(watched, sink, namespaces=namespaces, interval_s=interval_s)
        self._ledger = ledger
        self._recovered = False

    async def poll_once(self) -> int:
        """One round; the first one starts from the pipelines the ledger says exist."""
        if not self._recovered:
            await self._recover()
            self._recovered = True
        return await super().poll_once()

    async def _recover(self) -> None:
        """Remember every watched pipeline of this backend and these namespaces as seen (with
        its last known end, if any): one that is no longer there is reported gone."""
        found = 0
        for record in await self._ledger.watched():
            if record.backend != self._watched.name or record.namespace not in self._namespaces:
                continue  # another backend's (a switch) or namespace's: left as it is
            key = (record.namespace, record.name)
            if key not in self._seen:
                phase = record.outcome.phase if record.outcome else Phase.PENDING
                self._seen[key] = _Seen(record.job_id, phase=phase, recovered=True)
                found += 1
        self._log.info("pipelines_recovered", pipelines=found, backend=self._watched.name)

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
        seq = new_seq()
        envelopes = reports(
            job_id=live.owner,
            workflow_name=live.name,
            namespace=live.namespace,
            backend=self._watched.name,
            manifest=live.manifest,
            observed=observed,
            correlation_id=annotation(live.manifest, CORRELATION_ANNOTATION),
            job=state != job_state,  # the job's report only when its state changed
            seq=seq,
        )
        if reports_job(observed):
            job_state = state
        for envelope in envelopes:
            await self._sink.publish(envelope)
        # published first: a failed write is retried next round with the reports again
        await self._remember(live, observed, seq, seen)
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

    async def _remember(self, live: Live, observed: Observed, seq: int, seen: _Seen | None) -> None:
        """Keep the ledger in step: an end is recorded (once per end this process sees), a
        pipeline seen for the first time or running again after an end is watched, with no
        outcome."""
        assert live.owner is not None
        record = Transitions(live.owner, live.namespace, self._watched.name)
        first_sight = seen is None or seen.recovered
        if has_ended(observed):
            if first_sight or seen is None or seen.phase != observed.phase:
                await self._ledger.update(
                    live.owner, record.observed_end(Outcome.of(observed, seq))
                )
        elif first_sight or seen is None or seen.phase in ENDED:
            await self._ledger.update(live.owner, record.alive)

    async def _report_gone(self, key: Key, seen: _Seen) -> int:
        namespace, name = key
        seq = new_seq()
        unfinished = seen.phase not in ENDED
        if seen.recovered:
            reason = f"the workflow {name} was deleted while the workflow worker was down"
        else:
            reason = f"the workflow {name} was deleted before it finished"
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
                seq=seq,
            )
        ]
        if unfinished:
            envelopes.append(
                job_status(
                    entity_id=seen.owner,
                    phase=Phase.FAILED,
                    reason=reason,
                    correlation_id=None,
                    seq=seq,
                )
            )
        for envelope in envelopes:
            await self._sink.publish(envelope)
        failed = Outcome.of(Observed(Phase.FAILED, reason), seq) if unfinished else None
        record = Transitions(seen.owner, namespace, self._watched.name)
        await self._ledger.update(seen.owner, record.gone(failed))
        self._log.info(
            "pipeline_gone",
            job_id=seen.owner,
            name=name,
            namespace=namespace,
            recovered=seen.recovered,
            job_failed=unfinished,
        )
        return len(envelopes)
