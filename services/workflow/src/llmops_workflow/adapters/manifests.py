"""The manifests backend: validated YAML files, ``<dir>/<namespace>/<name>.yaml``.

The local stack's default (no cluster needed) and a GitOps mode: point ``MANIFESTS_DIR`` at a
repository checkout that Argo CD or Flux syncs. How the files are written (atomically, only
when they change) is :mod:`llmops_shared.kube.files`.

Nothing observes a cluster here: after a write the pipeline (and its job) is reported
``Pending`` with "written to <path>" and stays so; a cancellation writes
``spec.shutdown: Terminate`` into the file (what a GitOps sync would apply) and reports
``Cancelled``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops_shared.events import Phase
from llmops_shared.kube.files import FilesBackend
from llmops_workflow.ports import Manifest, WorkflowRejected, WorkflowUnavailable
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed


def _pipeline_of(items: list[dict[str, Any]]) -> tuple[str, str]:
    """The pipeline's namespace and name: an Argo Workflow's own; the built-in stage Jobs come
    as a ``List``, which has no metadata, so theirs is the pipeline's name label."""
    metadata = items[0]["metadata"]
    return metadata["namespace"], metadata.get("labels", {}).get(names.NAME_LABEL, metadata["name"])


class ManifestsBackend(FilesBackend[Observed]):
    """A :class:`~llmops_workflow.ports.WorkflowBackend` writing files under ``root``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, unavailable=WorkflowUnavailable, rejected=WorkflowRejected)

    async def apply(self, manifest: Manifest) -> Observed:
        items = self.files.objects(manifest)
        path = self.path_of(*_pipeline_of(items))
        await self.files.write(path, items)
        return Observed(Phase.PENDING, f"written to {path}")

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        path = self.path_of(namespace, name)
        items = await self.files.read(path)
        if items is None:
            return None
        for item in items:
            if item.get("kind") == "Workflow":
                item.setdefault("spec", {})["shutdown"] = "Terminate"
            elif item.get("kind") == "Job":
                item.setdefault("spec", {})["suspend"] = True
        await self.files.write(path, items)
        return Observed(Phase.CANCELLED, f"cancelled: terminate written to {path}")
