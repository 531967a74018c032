"""What the handlers and the watcher need from a serving backend, and the errors it may raise.

The handlers decide *what* an endpoint should look like (pure renders, rollout transforms,
which status to report); a backend only knows *where* it goes (a cluster through the
Kubernetes API, or files). Backends translate their failures into the runtime's vocabulary:
:class:`ServingUnavailable` (wait and retry) or :class:`ServingRejected` (dead-letter).

A backend holds the objects of one format (an InferenceService, or the built-in Deployment +
Service; the manifests backend writes either into the endpoint's one file). What routes
between the formats, for moves, is :class:`~llmops_serving.router.FormatRouter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from llmops_serving.config import RenderFormat
from llmops_serving.render.request import RenderOptions
from llmops_serving.render.status import Observed
from llmops_shared.kube import objects
from llmops_shared.kube.watcher import ObservationCache, Watched
from llmops_shared.streams import DependencyUnavailableError, NonRetryableError
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py

if TYPE_CHECKING:
    from llmops_serving.router import FormatRouter
    from llmops_serving.tombstones import Tombstones

Manifest = objects.Manifest
"""A rendered object: an InferenceService, or a ``v1 List`` of Deployment + Service."""

Live = objects.Live[Observed]
"""One endpoint's object as the backend holds it now (``owner``: the endpoint id)."""


class ServingUnavailable(DependencyUnavailableError):
    """The cluster cannot be reached, timed out, or answered 5xx/429: wait and retry."""


class ServingRejected(NonRetryableError):
    """The API refused the object (4xx) or the files cannot be written; retrying cannot help."""


@dataclass(frozen=True)
class Removal:
    """What removing an endpoint's objects of one format did: the objects deleted, and those
    found under the endpoint's name but left alone because this platform did not create them
    for this endpoint (no ``app.kubernetes.io/managed-by=llm-ops`` label, or another endpoint's
    ``llm-ops.io/endpoint-id``). Both empty: nothing of the format was there."""

    deleted: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    def __add__(self, other: Removal) -> Removal:
        return Removal(self.deleted + other.deleted, self.left + other.left)


class ServingBackend(Watched[Observed], Protocol):
    """Applies, reads, deletes and observes the objects of endpoints in one format (named
    ``kserve``, ``deployment`` or ``manifests``).

    ``apply`` is idempotent (server-side apply, or an atomic file write): applying the same
    manifest twice leaves one unchanged object. ``read`` gives the applied part of the live
    object (what :func:`~llmops_serving.render.rollout.desired_from_live` keeps).
    """

    async def apply(self, manifest: Manifest) -> Observed:
        """Create or update the object(s); the phase to report right after."""
        ...

    async def read(self, namespace: str, name: str) -> Live | None:
        """The endpoint's object as the watcher would see it (applied manifest and observed
        phase), or ``None`` when there is none."""
        ...

    async def delete(self, namespace: str, name: str) -> bool:
        """Delete; ``True`` when it is gone (or never existed), ``False`` while finalizing."""
        ...

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Delete the endpoint's objects that this platform created for ``endpoint_id``; leave
        anything else alone (see :class:`Removal`). Idempotent: once they are gone, nothing is
        deleted; a missing object (or kind) counts as gone."""
        ...

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """The objects under ``name`` that this platform did not create for ``endpoint_id``
        and that moving the endpoint to this format would take over (a description of each,
        with why). An object that goes away with the endpoint's own objects of the other
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


@dataclass(frozen=True)
class ServingPorts:
    """What the handlers are bound to in ``app.py`` (``tombstones``: the deleted endpoints,
    :mod:`llmops_serving.tombstones`)."""

    router: FormatRouter
    options: RenderOptions
    storage_uri_template: str
    sink: StatusSink
    cache: ObservationCache
    tombstones: Tombstones

    @property
    def backend(self) -> ServingBackend:
        """The backend of the format this worker renders."""
        return self.router.backend

    @property
    def builtin(self) -> bool:
        """Whether this worker renders the built-in Deployment + Service."""
        return self.router.own is RenderFormat.BUILTIN
