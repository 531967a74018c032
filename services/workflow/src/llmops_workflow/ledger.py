"""What the workflow worker remembers of each job's pipeline, beyond what the backend keeps.

A backend forgets: Argo deletes a finished Workflow after its TTL, the local backend removes a
finished pipeline's directory, and nothing at all is left of a workflow deleted while the
worker was down. The ledger keeps one record per job (durable: Redis,
:class:`~llmops_workflow.adapters.ledger.RedisLedger`), so that

* a job whose pipeline ended is never run again: a later submission (a replay) reports the
  remembered :class:`Outcome` (a *tombstone*) with the seq it was first reported with;
* a cancel that arrives before its submission (the relays of two gateway replicas publish
  independently) is remembered: the submission is refused and reported ``Cancelled``;
* on start the watcher knows which pipelines should exist (``watched``) and reports those
  that are gone as it would have reported them had it been running.

A record changes only through the pure transitions below, applied atomically by
:class:`~llmops_workflow.ports.PipelineLedger` ``update`` (compare and set), so a handler, the
watcher and another worker never lose each other's change. A transition returns its input
itself when nothing changes (nothing is written then).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from llmops_shared.events import Phase, RegisteredModel
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed

ENDED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
"""The phases a pipeline ends in."""


def now_iso() -> str:
    """UTC now as Argo writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_ended(observed: Observed) -> bool:
    """Whether an observation is a pipeline's end (a termination in flight is not yet one)."""
    return observed.phase in ENDED and not observed.terminating


class Outcome(BaseModel):
    """How a pipeline ended, as it was reported (re-reported as is, with the same ``seq``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    phase: Phase
    reason: str | None = None
    seq: int = Field(description="The seq of the report that said so.")
    done: int = 0
    total: int = 0
    nodes: list[dict[str, JsonValue]] = Field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    registered_model: RegisteredModel | None = None
    recorded_at: str = Field(default_factory=now_iso)

    @classmethod
    def of(cls, observed: Observed, seq: int) -> Outcome:
        return cls(
            phase=observed.phase,
            reason=observed.reason,
            seq=seq,
            done=observed.done,
            total=observed.total,
            nodes=observed.nodes,
            started_at=observed.started_at,
            finished_at=observed.finished_at,
            registered_model=observed.registered_model,
        )

    def says_as(self, other: Outcome) -> bool:
        """Whether both report the same (whatever their seq and when they were recorded)."""
        skip = {"seq", "recorded_at"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)

    def observed(self) -> Observed:
        """The observation to report again."""
        return Observed(
            self.phase,
            self.reason,
            done=self.done,
            total=self.total,
            nodes=list(self.nodes),
            started_at=self.started_at,
            finished_at=self.finished_at,
            registered_model=self.registered_model,
        )


class PipelineRecord(BaseModel):
    """One job's pipeline as the worker remembers it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str
    namespace: str
    backend: str = Field(description="The backend that runs it (argo, job, local, manifests).")
    applied: bool = Field(default=False, description="The backend accepted the pipeline.")
    watched: bool = Field(
        default=False,
        description="The pipeline should be in the (observable) backend: the watcher reports "
        "it once it is gone, also after a restart.",
    )
    cancel_requested: bool = False
    cancel_reason: str | None = None
    outcome: Outcome | None = Field(
        default=None,
        description="The pipeline ended (or was cancelled before it existed): the tombstone; "
        "the job is never run again.",
    )
    updated_at: str = Field(default_factory=now_iso)

    @property
    def name(self) -> str:
        """The pipeline's name (``train-<job_id>``)."""
        return names.workflow_name(self.job_id)

    def changed(self, **updates: object) -> PipelineRecord:
        """This record with ``updates``, or itself when they change nothing."""
        if all(getattr(self, field) == value for field, value in updates.items()):
            return self
        return self.model_copy(update={**updates, "updated_at": now_iso()})


Change = Callable[[PipelineRecord | None], PipelineRecord | None]
"""A transition: the current record (``None``: none) -> the new one (``None``: delete it)."""


class Transitions:
    """The transitions of one job's record (``Transitions(job_id, namespace, backend)``); the
    namespace and backend are the worker's, given to a record created when there is none."""

    def __init__(self, job_id: str, namespace: str, backend: str) -> None:
        self.job_id = job_id
        self.namespace = namespace
        self.backend = backend

    def new(self) -> PipelineRecord:
        return PipelineRecord(job_id=self.job_id, namespace=self.namespace, backend=self.backend)

    # ------------------------------------------------------------------ the handlers

    def claim(self, current: PipelineRecord | None) -> PipelineRecord:
        """A submission is about to be applied. An existing record is kept as it is: the
        handler reads from it whether the job ended or was cancelled."""
        return current if current is not None else self.new()

    def applied(self, watched: bool) -> Change:
        """The backend accepted the pipeline (``watched``: the watcher is to follow it)."""

        def change(current: PipelineRecord | None) -> PipelineRecord:
            return (current or self.new()).changed(
                applied=True,
                watched=watched or (current is not None and current.watched),
                namespace=self.namespace,
                backend=self.backend,
            )

        return change

    @staticmethod
    def release(current: PipelineRecord | None) -> PipelineRecord | None:
        """The backend refused the submission: forget the claim (the event is dead-lettered,
        and its replay after a fix must run), unless the record holds more than the claim."""
        if current is None or current.applied or current.cancel_requested or current.outcome:
            return current
        return None

    def cancel(self, reason: str) -> Change:
        """A cancel: remembered even for a job not submitted yet (its submission is then
        refused); a pipeline that ended keeps its outcome."""

        def change(current: PipelineRecord | None) -> PipelineRecord:
            record = current or self.new()
            if record.outcome is not None:
                return record
            return record.changed(cancel_requested=True, cancel_reason=reason)

        return change

    # ------------------------------------------------------------------ handlers and watcher

    def ended(self, outcome: Outcome, *, replace: bool = True) -> Change:
        """The pipeline ended as ``outcome``; ``replace=False`` keeps an outcome already
        recorded (a cancel that found nothing to stop is not more true than an observation)."""

        def change(current: PipelineRecord | None) -> PipelineRecord:
            record = current or self.new()
            if record.outcome is not None and not replace:
                return record
            return record.changed(outcome=outcome)

        return change

    # ------------------------------------------------------------------ the watcher

    def alive(self, current: PipelineRecord | None) -> PipelineRecord:
        """The watcher sees the pipeline, not ended: it exists (also one submitted before the
        ledger existed) and has no outcome (``argo retry`` runs an ended workflow again)."""
        return (current or self.new()).changed(
            applied=True, watched=True, outcome=None, namespace=self.namespace
        )

    def observed_end(self, outcome: Outcome) -> Change:
        """The watcher sees the pipeline ended: it exists until it is reported gone. An outcome
        recorded before that says the same is kept (with the seq it was first reported with)."""

        def change(current: PipelineRecord | None) -> PipelineRecord:
            record = current or self.new()
            kept = record.outcome if record.outcome and record.outcome.says_as(outcome) else None
            return record.changed(applied=True, watched=True, outcome=kept or outcome)

        return change

    def gone(self, failed: Outcome | None) -> Change:
        """The pipeline disappeared from the backend and was reported so; ``failed``: the
        outcome of one that disappeared unfinished."""

        def change(current: PipelineRecord | None) -> PipelineRecord | None:
            if current is None and failed is None:
                return None  # nothing worth remembering
            record = current or self.new()
            outcome = record.outcome or failed
            return record.changed(watched=False, outcome=outcome)

        return change
