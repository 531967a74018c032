"""The manifests backend: validated YAML files, ``<dir>/<namespace>/<name>.yaml``.

The local stack's default (no cluster needed) and a GitOps mode: point ``MANIFESTS_DIR`` at a
repository checkout that Argo CD or Flux syncs. How the files are written (atomically, only
when they change) is :mod:`llmops_shared.kube.files`.

An endpoint moved to the other format (``DeploymentMigrationRequested``) gets its file replaced
by the other format's objects in one atomic write: nothing else is left to remove, so this one
backend holds both formats (:meth:`~llmops_serving.router.FormatRouter.single`).

Nothing observes the cluster here: after a write the endpoint is reported ``Ready`` with the
reason "written to <path>", because no later event would ever move it out of ``Pending``.
"""

from __future__ import annotations

from pathlib import Path

from llmops_serving.ports import Live, Manifest, Removal, ServingRejected, ServingUnavailable
from llmops_serving.render.names import ENDPOINT_ID_LABEL
from llmops_serving.render.status import Observed
from llmops_shared.events import Phase
from llmops_shared.kube.files import FilesBackend
from llmops_shared.kube.objects import label


class ManifestsBackend(FilesBackend[Observed]):
    """A :class:`~llmops_serving.ports.ServingBackend` writing files under ``root``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, unavailable=ServingUnavailable, rejected=ServingRejected)

    async def apply(self, manifest: Manifest) -> Observed:
        items = self.files.objects(manifest)
        meta = items[0]["metadata"]
        path = self.path_of(meta["namespace"], meta["name"])
        await self.files.write(path, items)
        return Observed(Phase.READY, f"written to {path}")

    async def read(self, namespace: str, name: str) -> Live | None:
        path = self.path_of(namespace, name)
        items = await self.files.read(path)
        if items is None:
            return None
        manifest = (
            items[0] if len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items}
        )
        return Live(
            name=name,
            namespace=namespace,
            owner=label(manifest, ENDPOINT_ID_LABEL),
            manifest=manifest,
            observed=Observed(Phase.READY, f"written to {path}"),
        )

    async def delete(self, namespace: str, name: str) -> bool:
        await self.files.delete(self.path_of(namespace, name))
        return True

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Nothing: the endpoint's one file holds whichever format was written last."""
        return Removal()

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """Nothing: the endpoint's file is the platform's."""
        return ()

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        """Nothing: a move between formats is one write here."""
        return manifest, None
