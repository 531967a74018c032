"""The workflow worker's pipeline ledger (issue 19, gaps 2-4): the record transitions, and the
handlers and the watcher on an in-memory backend and ledger, in the orders events of one job
can arrive in (a cancel before its submission, a cancel while the submission is applied, a
replay after the pipeline ended and was deleted) and across a restart."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Any

import pytest

from llmops_shared.events import (
    Envelope,
    Event,
    JobStatusUpdated,
    Phase,
    PipelineStatusUpdated,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.kube.objects import Live
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC
from llmops_workflow.adapters.ledger import MemoryLedger
from llmops_workflow.config import WorkflowSettings
from llmops_workflow.handlers import handle_training_event
from llmops_workflow.ledger import Outcome, PipelineRecord, Transitions
from llmops_workflow.ports import Manifest, WorkflowPorts, WorkflowRejected
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.render.status import Observed
from llmops_workflow.watcher import Watcher

pytestmark = pytest.mark.unit

NS = "llm-ops-dev"
JOB = "0b5f7a52-8d7e-4d0c-9d5e-2f4f2b1f0c11"
NAME = f"train-{JOB}"


# ---------------------------------------------------------------- doubles


class Sink:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return f"0-{len(self.envelopes)}"


class FakeBackend:
    """An observable backend in memory: ``apply`` may wait on ``gate`` (a slow API) or be
    refused; ``terminate`` of a live pipeline requests termination, of an ended one changes
    nothing (as Argo's)."""

    name = "argo"
    observable = True

    def __init__(self) -> None:
        self.pipelines: dict[str, tuple[Manifest, Observed]] = {}
        self.applies: list[str] = []
        self.terminates: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.refuse: str | None = None

    async def apply(self, manifest: Manifest) -> Observed:
        name = manifest["metadata"]["name"]
        self.applies.append(name)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse:
            raise WorkflowRejected(self.refuse)
        if name not in self.pipelines:
            self.pipelines[name] = (manifest, Observed(Phase.PENDING, "submitted"))
        return self.pipelines[name][1]

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        self.terminates.append(name)
        if name not in self.pipelines:
            return None
        manifest, observed = self.pipelines[name]
        if observed.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED):
            return observed
        stopping = Observed(Phase.RUNNING, "termination requested", terminating=True)
        self.pipelines[name] = (manifest, stopping)
        return stopping

    def set(self, name: str, observed: Observed) -> None:
        self.pipelines[name] = (self.pipelines[name][0], observed)

    async def observe(self, namespaces: Sequence[str]) -> list[Live[Observed]]:
        return [
            Live(name, NS, manifest["metadata"]["labels"]["llm-ops.io/job-id"], manifest, seen)
            for name, (manifest, seen) in sorted(self.pipelines.items())
        ]

    async def ping(self) -> None:
        return None


class Worker:
    """The handler's ports and the watcher on one backend and ledger (one worker process)."""

    def __init__(self, backend: FakeBackend, ledger: MemoryLedger) -> None:
        self.backend = backend
        self.ledger = ledger
        self.sink = Sink()
        self.watcher = Watcher(backend, self.sink, namespaces=[NS], interval_s=0.01, ledger=ledger)
        self.ports = WorkflowPorts(
            backend,
            RenderOptions(gpu_available=False),
            jobs=False,
            namespace=NS,
            sink=self.sink,
            cache=self.watcher,
            ledger=ledger,
        )

    async def handle(self, envelope: Envelope) -> list[Any]:
        event = decode_event(encode_event(envelope))
        return [_payload(e) for e in await handle_training_event(event, self.ports)]

    def published(self) -> list[Any]:
        return [_payload(e) for e in self.sink.envelopes]


def _payload(envelope: Envelope) -> Any:
    event: Event = decode_event(encode_event(envelope))
    return event.payload


def _jobs(payloads: list[Any]) -> list[JobStatusUpdated]:
    return [p for p in payloads if isinstance(p, JobStatusUpdated)]


def _pipelines(payloads: list[Any]) -> list[PipelineStatusUpdated]:
    return [p for p in payloads if isinstance(p, PipelineStatusUpdated)]


def submitted(job_id: str = JOB) -> Envelope:
    spec = copy.deepcopy(SEED_TRAIN_JOB_SPEC)
    payload = TrainingJobSubmitted.model_validate({"job_id": job_id, "spec": spec})
    return new_event(payload, source="gateway", correlation_id="req-1")


def cancelled(job_id: str = JOB) -> Envelope:
    payload = TrainingJobCancelled(job_id=job_id, reason="user asked")
    return new_event(payload, source="gateway", correlation_id="req-2")


@pytest.fixture
def worker() -> Worker:
    return Worker(FakeBackend(), MemoryLedger())


# ---------------------------------------------------------------- transitions


def test_transitions_change_only_what_they_must() -> None:
    of = Transitions(JOB, NS, "argo")
    claimed = of.claim(None)
    assert (claimed.job_id, claimed.name, claimed.applied, claimed.watched) == (
        JOB,
        NAME,
        False,
        False,
    )
    assert of.claim(claimed) is claimed  # an existing record is read, not rewritten
    assert Transitions.release(claimed) is None  # a refused first submission leaves nothing
    applied = of.applied(True)(claimed)
    assert applied is not None
    assert applied.applied
    assert applied.watched
    assert of.applied(True)(applied) is applied
    assert Transitions.release(applied) is applied  # a refused redelivery keeps the record
    cancel = of.cancel("user asked")(None)
    assert cancel is not None
    assert cancel.cancel_requested
    assert not cancel.applied
    assert Transitions.release(cancel) is cancel
    first = Outcome.of(Observed(Phase.CANCELLED, "before"), seq=1)
    ended = of.ended(first, replace=False)(cancel)
    assert ended is not None
    assert ended.outcome == first
    later = Outcome.of(Observed(Phase.SUCCEEDED), seq=2)
    assert of.ended(later, replace=False)(ended) is ended  # kept
    assert of.cancel("again")(ended) is ended  # an ended pipeline keeps its outcome
    observed = of.observed_end(later)(ended)
    assert observed is not None
    assert observed.outcome == later
    assert observed.watched
    alive = of.alive(observed)
    assert alive.outcome is None
    assert alive.watched
    gone = of.gone(None)(observed)
    assert gone is not None
    assert gone.outcome == later
    assert not gone.watched
    assert of.gone(None)(None) is None
    failed = Outcome.of(Observed(Phase.FAILED, "deleted"), seq=3)
    unfinished = of.gone(failed)(applied)
    assert unfinished is not None
    assert unfinished.outcome == failed


def test_an_outcome_reports_again_what_was_observed() -> None:
    observed = Observed(
        Phase.SUCCEEDED,
        None,
        done=4,
        total=4,
        nodes=[{"name": "train", "phase": "Succeeded"}],
        started_at="2025-01-27T10:00:00Z",
        finished_at="2025-01-27T11:00:00Z",
    )
    record = PipelineRecord(job_id=JOB, namespace=NS, backend="argo")
    stored = record.model_copy(update={"outcome": Outcome.of(observed, seq=7)})
    back = PipelineRecord.model_validate_json(stored.model_dump_json())
    assert back.outcome is not None
    assert back.outcome.observed() == observed
    assert back.outcome.seq == 7


# ---------------------------------------------------------------- gap 4: a cancel first


async def test_a_cancel_before_its_submission_keeps_the_pipeline_from_being_created(
    worker: Worker,
) -> None:
    first = _jobs(await worker.handle(cancelled()))
    later = await worker.handle(submitted())
    assert worker.backend.applies == []
    assert [(j.phase, j.seq) for j in _jobs(later)] == [(Phase.CANCELLED, first[0].seq)]
    assert [p.phase for p in _pipelines(later)] == [Phase.CANCELLED]
    assert "cancelled before a pipeline existed: user asked" in (first[0].reason or "")
    # and again when the submission is redelivered
    assert worker.backend.applies == []
    assert _jobs(await worker.handle(submitted()))


async def test_a_cancel_handled_while_the_submission_is_applied_stops_the_new_pipeline(
    worker: Worker,
) -> None:
    worker.backend.gate = asyncio.Event()
    submitting = asyncio.create_task(worker.handle(submitted()))
    await worker.backend.entered.wait()  # the submission is inside the (slow) apply
    cancel = _jobs(await worker.handle(cancelled()))  # finds nothing to stop yet
    assert [j.phase for j in cancel] == [Phase.CANCELLED]
    worker.backend.gate.set()
    reports = await submitting
    assert worker.backend.terminates == [NAME, NAME]  # the cancel's, then the submission's
    assert worker.backend.pipelines[NAME][1].terminating
    assert _jobs(reports) == []  # not Pending after Cancelled: termination is in flight
    worker.backend.set(NAME, Observed(Phase.CANCELLED, "terminated"))
    await worker.watcher.poll_once()
    assert _jobs(worker.published())[-1].phase is Phase.CANCELLED
    record = await worker.ledger.get(JOB)
    assert record is not None
    assert record.outcome is not None
    assert record.outcome.reason == "terminated"  # the observation replaced the guess


async def test_a_refused_submission_is_forgotten_so_that_its_replay_after_a_fix_runs(
    worker: Worker,
) -> None:
    worker.backend.refuse = "422 Invalid"
    with pytest.raises(WorkflowRejected):
        await worker.handle(submitted())
    assert await worker.ledger.get(JOB) is None
    worker.backend.refuse = None
    assert [j.phase for j in _jobs(await worker.handle(submitted()))] == [Phase.PENDING]
    assert NAME in worker.backend.pipelines


# ---------------------------------------------------------------- gap 3: replays


async def test_a_replay_of_an_ended_pipeline_reports_its_outcome_and_runs_nothing(
    worker: Worker,
) -> None:
    await worker.handle(submitted())
    await worker.watcher.poll_once()
    worker.backend.set(NAME, Observed(Phase.SUCCEEDED, None, done=4, total=4))
    await worker.watcher.poll_once()
    [outcome] = [j for j in _jobs(worker.published()) if j.phase is Phase.SUCCEEDED]
    del worker.backend.pipelines[NAME]  # Argo's TTL
    await worker.watcher.poll_once()
    assert _pipelines(worker.published())[-1].phase is Phase.DELETED
    worker.backend.applies.clear()
    replayed = await worker.handle(submitted())
    assert worker.backend.applies == []
    assert [(j.phase, j.seq) for j in _jobs(replayed)] == [(Phase.SUCCEEDED, outcome.seq)]
    [pipeline] = _pipelines(replayed)
    assert pipeline.details.progress.done == 4  # type: ignore[union-attr]
    # a cancel of it now says how it ended, and stops nothing
    late = _jobs(await worker.handle(cancelled()))
    assert [(j.phase, j.seq) for j in late] == [(Phase.SUCCEEDED, outcome.seq)]
    assert worker.backend.terminates == []


# ---------------------------------------------------------------- gap 2: restarts


async def test_a_restarted_watcher_reports_what_was_deleted_while_it_was_down() -> None:
    backend, ledger = FakeBackend(), MemoryLedger()
    before = Worker(backend, ledger)
    await before.handle(submitted())
    ended_job = "6a7c3c1e-4c1b-4a8e-9d4e-8f2d9c7b5a10"
    await before.handle(submitted(ended_job))
    backend.set(f"train-{ended_job}", Observed(Phase.FAILED, "OOMKilled"))
    await before.watcher.poll_once()
    elsewhere = PipelineRecord(
        job_id="b2c1", namespace="other", backend="argo", applied=True, watched=True
    )
    await ledger.update("b2c1", lambda _: elsewhere)
    # the worker stops; both workflows are deleted; a new worker starts
    backend.pipelines.clear()
    after = Worker(backend, ledger)
    assert await after.watcher.poll_once() == 3  # Deleted + Failed, and Deleted
    jobs = _jobs(after.published())
    assert [(j.entity_id, j.phase) for j in jobs] == [(JOB, Phase.FAILED)]
    assert jobs[0].reason == f"the workflow {NAME} was deleted while the workflow worker was down"
    deleted = {p.entity_id for p in _pipelines(after.published()) if p.phase is Phase.DELETED}
    assert deleted == {NAME, f"train-{ended_job}"}
    assert [r.job_id for r in await ledger.watched()] == ["b2c1"]  # another namespace's
    record = await ledger.get(JOB)
    assert record is not None
    assert record.outcome is not None
    assert record.outcome.phase is Phase.FAILED
    assert await after.watcher.poll_once() == 0  # reported once
    # the next restart has nothing left to report
    assert await Worker(backend, ledger).watcher.poll_once() == 0


async def test_a_restarted_watcher_reports_a_surviving_pipeline_once_as_usual() -> None:
    backend, ledger = FakeBackend(), MemoryLedger()
    before = Worker(backend, ledger)
    await before.handle(submitted())
    await before.watcher.poll_once()
    after = Worker(backend, ledger)
    assert await after.watcher.poll_once() == 2  # first sight: pipeline and job, Pending
    assert [j.phase for j in _jobs(after.published())] == [Phase.PENDING]
    record = await ledger.get(JOB)
    assert record is not None
    assert record.watched
    assert record.outcome is None


def test_records_must_outlive_the_pipelines_they_describe() -> None:
    settings = WorkflowSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.pipeline_record_ttl_s == 90 * 24 * 3600
    with pytest.raises(ValueError, match="PIPELINE_RECORD_TTL_S=3600 must be longer"):
        WorkflowSettings(_env_file=None, pipeline_record_ttl_s=3600, active_deadline_seconds=7200)  # type: ignore[call-arg]
