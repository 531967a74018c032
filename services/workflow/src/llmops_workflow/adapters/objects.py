"""How the workflow worker sees its objects (pure: the Argo Server backend has no kubernetes
client): its kinds, the applied part of a live object, and the view of its Workflows."""

from __future__ import annotations

from typing import Any, Final

from llmops_shared.kube import objects
from llmops_shared.kube.objects import Kind, Manifest, View
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed, observe_workflow

WORKFLOW: Final = Kind(names.ARGO_API_VERSION, "Workflow")
JOB: Final = Kind("batch/v1", "Job")


def desired_from_live(obj: dict[str, Any]) -> Manifest:
    """The applied part of a live object: identity, our labels and annotations, spec. What is
    reported to the gateway is then the manifest this worker rendered (plus
    ``spec.shutdown`` when it was terminated)."""
    return objects.desired_from_live(obj, names.is_ours)


WORKFLOWS: Final = View[Observed](
    names.MANAGED_SELECTOR, names.JOB_ID_LABEL, desired_from_live, observe_workflow
)
"""The managed Workflows, each reported with its job id."""
