"""What the handlers and the watcher need from a workflow backend, and the errors it may raise.

The handlers decide *what* a pipeline should look like (pure renders) and which status to
report; a backend only knows *where* it goes (a cluster through the Kubernetes API, or files).
Backends translate their failures into the runtime's vocabulary: :class:`WorkflowUnavailable`
(wait and retry) or :class:`WorkflowRejected` (report Failed, dead-letter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py
from llmops_workflow.render.request import RenderOptions
from llmops_workflow.render.status import Observed

Manifest = dict[str, Any]
"""A rendered object: a Workflow, or a ``v1 List`` of the built-in Jobs."""


class WorkflowUnavailable(DependencyUnavailableError):
    """The cluster cannot be reached, timed out, or answered 5xx/429/401/403: wait and retry."""


class WorkflowRejected(NonRetryableError):
    """The API refused the object (4xx) or the request cannot be rendered; retrying cannot
    help."""


@dataclass(frozen=True)
class Live:
    """One pipeline as the backend holds it now."""

    name: str
    namespace: str
    job_id: str | None
    manifest: Manifest
    observed: Observed


class WorkflowBackend(Protocol):
    """Applies, terminates and observes the pipelines of training jobs.

    ``apply`` is idempotent (server-side apply, or an atomic file write): applying the same
    manifest twice leaves one unchanged object, and a redelivered submission of a finished
    pipeline reports what it observes instead of starting it again.
    """

    @property
    def name(self) -> str:
        """Short backend name reported in status details (``argo``, ``job``, ``manifests``)."""
        ...

    @property
    def observable(self) -> bool:
        """Whether a watcher can observe live state (false for plain files)."""
        ...

    async def apply(self, manifest: Manifest) -> Observed:
        """Create or update the pipeline; the phase to report right after."""
        ...

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        """Stop the pipeline (Argo: ``spec.shutdown: Terminate``); ``None`` when it does not
        exist; else the phase to report right after."""
        ...

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        """Every pipeline this worker manages in ``namespaces`` with its observed phase."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can serve requests now (readiness)."""
        ...


class ObservationCache(Protocol):
    """The watcher's memory of what it last reported; the handlers make it forget a pipeline
    they changed, so its next observation is reported even if it looks unchanged."""

    def forget(self, namespace: str, name: str) -> None:
        """Report this pipeline's next observation whatever it is."""
        ...


class NoCache:
    """An :class:`ObservationCache` for backends without a watcher (files)."""

    def forget(self, namespace: str, name: str) -> None:
        return None


@dataclass(frozen=True)
class WorkflowPorts:
    """What the handlers are bound to in ``app.py``."""

    backend: WorkflowBackend
    options: RenderOptions
    jobs: bool
    namespace: str
    sink: StatusSink
    cache: ObservationCache
