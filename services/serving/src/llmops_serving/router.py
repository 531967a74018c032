"""The two formats an endpoint can be served in, and the one object that routes between them.

A worker renders one format (``SERVING_FRAMEWORK_ENABLED`` and ``SERVING_BACKEND`` choose), but
an endpoint deployed before a flag change, or moved by ``DeploymentMigrationRequested``, has
objects of the other one: the handlers and the watcher reach both through a
:class:`FormatRouter`. On a cluster each format has its backend on the same API client; the
manifests backend holds either format in the endpoint's one file, so both are the same backend
there, and a write of one format replaces the other.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmops_serving.config import RenderFormat
from llmops_serving.ports import Manifest, Removal, ServingBackend


def other_format(fmt: RenderFormat) -> RenderFormat:
    """The format an endpoint moves from (or to) besides ``fmt``."""
    return RenderFormat.BUILTIN if fmt is RenderFormat.KSERVE else RenderFormat.KSERVE


def format_of(manifest: Manifest) -> RenderFormat:
    """The format of an endpoint's manifest (an InferenceService, or the built-in objects)."""
    if manifest.get("kind") == "InferenceService":
        return RenderFormat.KSERVE
    return RenderFormat.BUILTIN


class FormatRouter:
    """The backend of each format where this worker runs, and the format it renders (``own``)."""

    def __init__(self, own: RenderFormat, backends: Mapping[RenderFormat, ServingBackend]) -> None:
        self.own = own
        self.other = other_format(own)
        self._backends = {fmt: backends[fmt] for fmt in (own, self.other)}

    @classmethod
    def single(cls, own: RenderFormat, backend: ServingBackend) -> FormatRouter:
        """One backend holding both formats (the manifests backend)."""
        return cls(own, {own: backend, other_format(own): backend})

    @property
    def backend(self) -> ServingBackend:
        """The backend of the format this worker renders."""
        return self._backends[self.own]

    def of(self, fmt: RenderFormat) -> ServingBackend:
        """The backend holding objects of ``fmt``."""
        return self._backends[fmt]

    async def remove_other_format(
        self, namespace: str, name: str, *, keep: RenderFormat, endpoint_id: str
    ) -> Removal:
        """Delete the endpoint's objects of the format other than ``keep`` that this platform
        created for ``endpoint_id``; leave anything else alone (see :class:`Removal`).
        Nothing where one backend holds both formats: the endpoint's one file already holds
        ``keep``."""
        backend = self.of(other_format(keep))
        if backend is self.of(keep):
            return Removal()
        return await backend.remove_owned(namespace, name, endpoint_id=endpoint_id)
