"""The settings both Kubernetes workers read (serving, workflow), so one ``.env`` configures
them the same way: mixed into each one's :class:`~llmops_shared.config.ServiceSettings`
subclass (``class ServingSettings(ServiceSettings, KubeSettings)``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from llmops_shared.specs import ImageTable


class KubeSettings(BaseModel):
    """How the worker reaches the cluster, and how often its watcher looks."""

    kubeconfig: str | None = Field(
        default=None, description="kubeconfig file; unset: in-cluster config, else ~/.kube/config."
    )
    kube_context: str | None = Field(default=None, description="kubeconfig context to use.")
    kube_request_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds per Kubernetes API request."
    )
    watch_interval_s: float = Field(
        default=5.0, gt=0, description="How often the watcher polls the cluster for status."
    )


def image_table(path: Path | None) -> ImageTable:
    """The image table of ``IMAGE_TABLE_FILE`` when set, else the built-in one."""
    return ImageTable.from_yaml_file(path) if path else ImageTable()
