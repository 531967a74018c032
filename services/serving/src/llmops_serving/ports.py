"""What the handlers and the watcher need from a serving backend, and the errors it may raise.

The handlers decide *what* an endpoint should look like (pure renders, rollout transforms,
which status to report); a backend only knows *where* it goes (a cluster through the
Kubernetes API, or files). Backends translate their failures into the runtime's vocabulary:
:class:`ServingUnavailable` (wait and retry) or :class:`ServingRejected` (dead-letter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from llmops_serving.config import RenderFormat
from llmops_serving.render.request import RenderOptions
from llmops_serving.render.status import Observed
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py

Manifest = dict[str, Any]
"""A rendered object: an InferenceService, or a ``v1 List`` of Deployment + Service."""


class ServingUnavailable(DependencyUnavailableError):
    """The cluster cannot be reached, timed out, or answered 5xx/429: wait and retry."""


class ServingRejected(NonRetryableError):
    """The API refused the object (4xx) or the files cannot be written; retrying cannot help."""


@dataclass(frozen=True)
class Live:
    """One endpoint's object as the backend holds it now."""

    name: str
    namespace: str
    endpoint_id: str | None
    manifest: Manifest
    observed: Observed


@dataclass(frozen=True)
class Removal:
    """What :meth:`ServingBackend.remove_other_format` did: the objects it deleted, and those it
    found under the endpoint's name but left alone because this platform did not create them
    for this endpoint (no ``app.kubernetes.io/managed-by=llm-ops`` label, or another endpoint's
    ``llm-ops.io/endpoint-id``). Both empty: nothing of the other format was there."""

    deleted: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    def __add__(self, other: Removal) -> Removal:
        return Removal(self.deleted + other.deleted, self.left + other.left)


class ServingBackend(Protocol):
    """Applies, reads, deletes and observes the objects of endpoints.

    ``apply`` is idempotent (server-side apply, or an atomic file write): applying the same
    manifest twice leaves one unchanged object. ``read`` returns the applied part of the live
    object (what :func:`~llmops_serving.render.rollout.desired_from_live` keeps) or ``None``.

    A backend holds one format (an InferenceService, or the built-in Deployment + Service;
    the manifests backend writes either into the endpoint's one file). Moving an endpoint
    between formats needs the other format too: :meth:`for_format` gives the backend of a
    format on the same cluster (or directory), and :meth:`remove_other_format` removes what is
    left of the other one.
    """

    @property
    def name(self) -> str:
        """Short backend name reported in status details (``kserve``, ``deployment``...)."""
        ...

    @property
    def observable(self) -> bool:
        """Whether a watcher can observe live state (false for plain files)."""
        ...

    async def apply(self, manifest: Manifest) -> Observed:
        """Create or update the object(s); the phase to report right after."""
        ...

    async def read(self, namespace: str, name: str) -> Manifest | None:
        """The applied manifest of the endpoint's object, or ``None`` when there is none."""
        ...

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete; ``True`` when it is gone (or never existed), ``False`` while finalizing."""
        ...

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        """Every object this worker manages in ``namespaces`` with its observed phase."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can serve requests now (readiness)."""
        ...

    def for_format(self, target: RenderFormat) -> ServingBackend:
        """The backend holding objects of ``target`` where this one holds its own: itself when
        it already does, else a backend on the same cluster client (and request timeout)."""
        ...

    async def remove_other_format(
        self, namespace: str, name: str, *, keep: RenderFormat, endpoint_id: str
    ) -> Removal:
        """Delete the endpoint's objects of the format other than ``keep`` that this platform
        created for ``endpoint_id``; leave anything else alone (see :class:`Removal`).

        Idempotent: once they are gone, nothing is deleted. A missing object (or kind) counts
        as gone. The manifests backend keeps one file per endpoint, which ``apply`` of the other
        format has already replaced, so it has nothing to remove.
        """
        ...

    async def status(self, namespace: str, name: str) -> Live | None:
        """The endpoint's object of this backend's format as the watcher would see it (applied
        manifest and observed phase), or ``None`` when there is none."""
        ...

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """The objects of this backend's format under ``name`` that this platform did not create
        for ``endpoint_id`` and that moving the endpoint here would take over (a description of
        each, with why). An object that goes away with the endpoint's own objects of the other
        format (the ``Service`` KServe creates for the endpoint's InferenceService) is not one.
        """
        ...

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        """Finish a move to this format once the old objects are removed: apply what was held
        back (the built-in ``Service``, whose name KServe's own Service held) and drop the
        ``llm-ops.io/migrating-from`` annotation. ``manifest`` is the new object as observed.
        Returns the endpoint's full manifest and, while something still blocks the move (a
        Service of the name that is not the endpoint's, still being garbage-collected), why
        (nothing is changed then)."""
        ...


class ObservationCache(Protocol):
    """The watcher's memory of what it last reported; the handlers adjust it so the watcher
    reports again after a change it would otherwise think it has already reported."""

    def forget(self, namespace: str, name: str) -> None:
        """Report this object's next observation even if it looks unchanged."""
        ...

    def expect_gone(self, namespace: str, name: str, endpoint_id: str) -> None:
        """Report ``Deleted`` once this object has disappeared."""
        ...

    def moved_away(self, namespace: str, name: str) -> None:
        """The endpoint now lives in a format this watcher does not observe: stop reporting
        this object, and do not report ``Deleted`` when it disappears (a migration removes it;
        the endpoint is not gone). Undone by :meth:`forget` or :meth:`expect_gone`."""
        ...


class NoCache:
    """An :class:`ObservationCache` for backends without a watcher (files)."""

    def forget(self, namespace: str, name: str) -> None:
        return None

    def expect_gone(self, namespace: str, name: str, endpoint_id: str) -> None:
        return None

    def moved_away(self, namespace: str, name: str) -> None:
        return None


@dataclass(frozen=True)
class ServingPorts:
    """What the handlers are bound to in ``app.py``."""

    backend: ServingBackend
    options: RenderOptions
    builtin: bool
    storage_uri_template: str
    sink: StatusSink
    cache: ObservationCache
