"""Handlers of ``llmops.training``: render, submit (or terminate), report, and return; never
wait for a pipeline to run.

Plain async functions ``(event, ports) -> status events``; ``app.py`` binds ``ports`` with
``functools.partial``. After a submission they report what the backend says right after:
``Pending`` for a new pipeline (the watcher reports ``Running``/``Succeeded``/``Failed``
later), the observed phase for a redelivered one, ``Pending`` "written to <path>" for the
manifests backend. Each report is a ``pipeline`` and a ``job`` status event.

Refused requests (the API answers 4xx) are reported ``Failed`` out of band first, so the
gateway shows the failure, then :class:`~llmops_shared.streams.NonRetryableError` is raised
and the runtime dead-letters the event. Outages raise ``DependencyUnavailableError`` and
nothing is reported: the entry stays pending and is retried.
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
    """Render the job's pipeline and apply it; report the backend's phase."""
    request = train_request(
        submitted, namespace=ports.namespace, correlation_id=event.envelope.correlationid
    )
    if ports.jobs:
        manifest = render_jobs(request, ports.options)
    else:
        manifest = render_workflow(request, ports.options)
    # The report is stamped *before* the apply: the watcher may observe (and report) the new
    # workflow's progress while this handler is still running, and the gateway orders by seq,
    # so the handler's Pending must never be newer than what the watcher saw after the apply.
    seq = new_seq()
    observed = await ports.backend.apply(manifest)
    if not observed.total:  # nothing has run yet: the plan's size
        observed = dataclasses.replace(observed, total=steps_total(manifest))
    return _changed(
        event,
        submitted.job_id,
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
    (there is nothing to stop); a running one is reported as observed after the request, and
    the watcher reports ``Cancelled`` once Argo has stopped it."""
    name = names.workflow_name(cancelled.job_id)
    seq = new_seq()  # before the change, as in handle_submitted
    observed = await ports.backend.terminate(ports.namespace, name)
    if observed is None:
        observed = Observed(
            Phase.CANCELLED, f"cancelled before a pipeline existed: {cancelled.reason}"
        )
    return _changed(event, cancelled.job_id, ports, observed, "pipeline_cancelled", seq=seq)


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
