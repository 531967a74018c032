"""What the handlers and the watcher need from a workflow backend, and the errors it may raise.

The handlers decide *what* a pipeline should look like (pure renders) and which status to
report; a backend only knows *where* it goes (a cluster through the Kubernetes API, or files).
Backends translate their failures into the runtime's vocabulary: :class:`WorkflowUnavailable`
(wait and retry) or :class:`WorkflowRejected` (report Failed, dead-letter).

What the worker remembers of each job's pipeline beyond the backend (the tombstones of ended
pipelines, cancels that came first, the pipelines to find again after a restart) is a
:class:`PipelineLedger` (:mod:`llmops_workflow.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from llmops_shared.kube import objects
from llmops_shared.kube.watcher import ObservationCache, Watched
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py
from llmops_workflow.ledger import Change, PipelineRecord
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.render.status import Observed

Manifest = objects.Manifest
"""A rendered object: a Workflow, or a ``v1 List`` of the built-in Jobs."""

Live = objects.Live[Observed]
"""One pipeline as the backend holds it now (``owner``: the job id)."""


class WorkflowUnavailable(DependencyUnavailableError):
    """The cluster cannot be reached, timed out, or answered 5xx/429/401/403: wait and retry."""


class WorkflowRejected(NonRetryableError):
    """The API refused the object (4xx) or the request cannot be rendered; retrying cannot
    help."""


class WorkflowBackend(Watched[Observed], Protocol):
    """Applies, terminates and observes the pipelines of training jobs (named ``argo``,
    ``job``, ``local`` or ``manifests``).

    ``apply`` is idempotent (server-side apply, or an atomic file write): applying the same
    manifest twice leaves one unchanged object, and a redelivered submission of a finished
    pipeline reports what it observes instead of starting it again.
    """

    async def apply(self, manifest: Manifest) -> Observed:
        """Create or update the pipeline; the phase to report right after."""
        ...

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        """Stop the pipeline (Argo: ``spec.shutdown: Terminate``); ``None`` when it does not
        exist; else the phase to report right after."""
        ...


class PipelineLedger(Protocol):
    """The durable record of every job's pipeline (:mod:`llmops_workflow.ledger`), one per job
    id. Raises :class:`WorkflowUnavailable` when its store cannot be reached."""

    async def get(self, job_id: str) -> PipelineRecord | None:
        """The job's record, if there is one."""
        ...

    async def update(self, job_id: str, change: Change) -> PipelineRecord | None:
        """Replace the job's record by ``change(current)`` atomically (``None`` deletes it) and
        return the new one. ``change`` may be called more than once (another writer changed
        the record meanwhile), so it must be pure; returning ``current`` itself writes
        nothing."""
        ...

    async def watched(self) -> list[PipelineRecord]:
        """Every record with ``watched`` set: the pipelines that should be in a backend."""
        ...


@dataclass(frozen=True)
class WorkflowPorts:
    """What the handlers are bound to in ``app.py``."""

    backend: WorkflowBackend
    options: RenderOptions
    jobs: bool
    namespace: str
    sink: StatusSink
    cache: ObservationCache
    ledger: PipelineLedger
