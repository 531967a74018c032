"""Handlers of ``llmops.training``: render, submit (or terminate), report, and return; never
wait for a pipeline to run.

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. After a submission they report what the backend says right after:
``Pending`` for a new pipeline (the watcher reports ``Running``/``Succeeded``/``Failed``
later), the observed phase for a redelivered one, ``Pending`` "written to <path>" for the
manifests backend. Each report is a ``pipeline`` and a ``job`` status event.

Every job has a record in the worker's ledger (:mod:`llmops_workflow.ledger`): a submission of
a job whose pipeline ended, or that was cancelled first, runs nothing and reports what is
remembered. Events of one job may arrive in any order (the relays of several gateway replicas
publish independently) and be replayed long after (the idempotency window is days, a record
is kept ``PIPELINE_RECORD_TTL_S``).

Refused requests (the API answers 4xx) are reported ``Failed`` out of band first, so the
gateway shows the failure, then :class:`~llmops_shared.streams.NonRetryableError` is raised
and the runtime dead-letters the event (the claim is released: its replay after a fix runs).
Outages (of the backend or of the ledger) raise ``DependencyUnavailableError`` and nothing is
reported: the entry stays pending and is retried.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from llmops_shared.dispatch import Dispatcher
from llmops_shared.events import (
    Envelope,
    Event,
    Phase,
    TrainingJobCancelled,
    TrainingJobSubmitted,
    new_seq,
)
from llmops_shared.logging import get_logger
from llmops_shared.streams import NonRetryableError
from llmops_workflow.ledger import Outcome, PipelineRecord, Transitions
from llmops_workflow.ports import Manifest, WorkflowPorts
from llmops_workflow.render import names
from llmops_workflow.render.jobs import render_jobs
from llmops_workflow.render.request import train_request
from llmops_workflow.render.status import Observed, steps_total
from llmops_workflow.render.workflow import render_workflow
from llmops_workflow.report import reports

_log = get_logger(__name__)


async def handle_submitted(
    event: Event, submitted: TrainingJobSubmitted, ports: WorkflowPorts
) -> list[Envelope]:
    """Render the job's pipeline and apply it; report the backend's phase.

    The job's record (:mod:`llmops_workflow.ledger`) is claimed first: a job whose pipeline
    ended is not run again (its remembered outcome is reported, with the seq it was first
    reported with), and one that was cancelled before this submission arrived is not created
    (the cancel is carried out as if it came now). A cancel handled while the pipeline was
    being applied is noticed right after the apply, and the new pipeline is terminated.
    """
    request = train_request(
        submitted, namespace=ports.namespace, correlation_id=event.envelope.correlationid
    )
    if ports.jobs:
        manifest = render_jobs(request, ports.options)
    else:
        manifest = render_workflow(request, ports.options)
    job_id = submitted.job_id
    record = _transitions(job_id, ports)
    claimed = await ports.ledger.update(job_id, record.claim)
    assert claimed is not None  # a claim always leaves a record
    if claimed.outcome is not None:
        return _remembered(event, claimed, "pipeline_submission_remembered")
    if claimed.cancel_requested:
        return await _stop(
            event, job_id, ports, claimed.cancel_reason or "", "pipeline_submission_cancelled"
        )
    # The report is stamped *before* the apply: the watcher may observe (and report) the new
    # workflow's progress while this handler is still running, and the gateway orders by seq,
    # so the handler's Pending must never be newer than what the watcher saw after the apply.
    seq = new_seq()
    try:
        observed = await ports.backend.apply(manifest)
    except NonRetryableError:
        await ports.ledger.update(job_id, record.release)  # a replay after a fix must run
        raise
    applied = await ports.ledger.update(job_id, record.applied(ports.backend.observable))
    if applied is not None and applied.cancel_requested:
        # a cancel was handled while this pipeline was applied, found nothing to stop and
        # reported Cancelled: stop what was just created
        stopped = await ports.backend.terminate(ports.namespace, names.workflow_name(job_id))
        _log.info("pipeline_cancel_overtook_submission", job_id=job_id)
        observed = stopped or Observed(
            Phase.CANCELLED, f"cancelled before a pipeline existed: {applied.cancel_reason}"
        )
    if not observed.total:  # nothing has run yet: the plan's size
        observed = dataclasses.replace(observed, total=steps_total(manifest))
    return _changed(
        event,
        job_id,
        ports,
        observed,
        "pipeline_submitted",
        manifest=manifest,
        seq=seq,
        backend=ports.backend.name,
    )


async def handle_cancelled(
    event: Event, cancelled: TrainingJobCancelled, ports: WorkflowPorts
) -> list[Envelope]:
    """Terminate the job's pipeline. A pipeline that does not exist is reported Cancelled
    (there is nothing to stop) and the cancel is remembered, so that a submission arriving
    after it (another relay's) is refused; a running one is reported as observed after the
    request, and the watcher reports ``Cancelled`` once Argo has stopped it; one that ended
    (even long ago, deleted since) is reported as it ended."""
    job_id = cancelled.job_id
    record = await ports.ledger.update(job_id, _transitions(job_id, ports).cancel(cancelled.reason))
    if record is not None and record.outcome is not None:
        return _remembered(event, record, "pipeline_cancel_remembered")
    return await _stop(event, job_id, ports, cancelled.reason, "pipeline_cancelled")


async def _stop(
    event: Event, job_id: str, ports: WorkflowPorts, reason: str, logged: str
) -> list[Envelope]:
    """Terminate the job's pipeline and report it; none: report (and remember) Cancelled."""
    name = names.workflow_name(job_id)
    seq = new_seq()  # before the change, as in handle_submitted
    observed = await ports.backend.terminate(ports.namespace, name)
    if observed is None:
        observed = Observed(Phase.CANCELLED, f"cancelled before a pipeline existed: {reason}")
        outcome = Outcome.of(observed, seq)
        await ports.ledger.update(job_id, _transitions(job_id, ports).ended(outcome, replace=False))
    return _changed(event, job_id, ports, observed, logged, seq=seq)


def _transitions(job_id: str, ports: WorkflowPorts) -> Transitions:
    return Transitions(job_id, ports.namespace, ports.backend.name)


def _remembered(event: Event, record: PipelineRecord, logged: str) -> list[Envelope]:
    """The reports of a pipeline that ended, as they were first sent (same seq: the gateway
    already has them, or gets them back); nothing is applied or terminated."""
    assert record.outcome is not None
    outcome = record.outcome
    _log.info(
        logged,
        job_id=record.job_id,
        name=record.name,
        namespace=record.namespace,
        phase=outcome.phase.value,
        recorded_at=outcome.recorded_at,
    )
    return reports(
        job_id=record.job_id,
        workflow_name=record.name,
        namespace=record.namespace,
        backend=record.backend,
        manifest=None,
        observed=outcome.observed(),
        correlation_id=event.envelope.correlationid,
        seq=outcome.seq,
    )


async def report_failure(
    event: Event,
    job: TrainingJobSubmitted | TrainingJobCancelled,
    ports: WorkflowPorts,
    reason: str,
) -> None:
    """Publish ``Failed`` (pipeline and job) out of band, before the event is dead-lettered."""
    _log.warning("pipeline_refused", job_id=job.job_id, reason=reason)
    for envelope in _reply(event, job.job_id, ports, Observed(Phase.FAILED, reason)):
        await ports.sink.publish(envelope)


def _changed(
    event: Event,
    job_id: str,
    ports: WorkflowPorts,
    observed: Observed,
    logged: str,
    *,
    manifest: Manifest | None = None,
    seq: int,
    **facts: str,
) -> list[Envelope]:
    """The reports after a handler changed the job's pipeline (``seq`` stamped before the
    change); the watcher reports the pipeline again even if it looks unchanged since its last
    round, and the change is logged as ``logged`` (with ``facts``)."""
    name = names.workflow_name(job_id)
    envelopes = _reply(event, job_id, ports, observed, manifest=manifest, seq=seq)
    ports.cache.forget(ports.namespace, name)
    _log.info(
        logged,
        job_id=job_id,
        name=name,
        namespace=ports.namespace,
        **facts,
        phase=observed.phase.value,
    )
    return envelopes


def _reply(
    event: Event,
    job_id: str,
    ports: WorkflowPorts,
    observed: Observed,
    *,
    manifest: Manifest | None = None,
    seq: int | None = None,
) -> list[Envelope]:
    """The reports (:func:`~llmops_workflow.report.reports`) answering ``event`` about the
    job's pipeline as ``observed``."""
    return reports(
        job_id=job_id,
        workflow_name=names.workflow_name(job_id),
        namespace=ports.namespace,
        backend=ports.backend.name,
        manifest=manifest,
        observed=observed,
        correlation_id=event.envelope.correlationid,
        seq=seq,
    )


handle_training_event: Final[Dispatcher[WorkflowPorts]] = Dispatcher(
    "workflow",
    {
        TrainingJobSubmitted: handle_submitted,
        TrainingJobCancelled: handle_cancelled,
    },
    refused=report_failure,
)
"""The handler of ``llmops.training``: ``handler(event, ports)``; a refused request is reported,
then raised."""
