"""An in-memory :class:`~llmops_registry.ports.RegistryBackend`: repositories in dicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llmops_registry.ports import (
    ProgressCallback,
    RegistryBackend,
    RepoNotFound,
    ResolvedModel,
    RevisionNotFound,
)
from llmops_shared.events.payloads.catalog import ImportProgress


@dataclass
class FakeRegistry:
    """A Hub of ``models`` (repo id -> the model at its default branch) plus ``revisions``
    ((repo id, branch or tag) -> the model there). ``download`` reports ``download_progress``
    through the callback, then answers ``store_uri/<repo>/<sha>``. Errors set in ``fail`` (by
    method name: ``resolve``, ``download``, ``current_revision``) are raised instead."""

    backend_name: str = "fake-hub"
    store_uri: str = "file:///models"
    models: dict[str, ResolvedModel] = field(default_factory=dict)
    revisions: dict[tuple[str, str], ResolvedModel] = field(default_factory=dict)
    upstream: dict[tuple[str, str | None], str] = field(default_factory=dict)
    """(repo id, branch or None) -> the commit it points at now (update checks)."""
    download_progress: Sequence[ImportProgress] = ()
    fail: dict[str, BaseException] = field(default_factory=dict)
    resolved: list[tuple[str, str | None]] = field(default_factory=list)
    downloaded: list[ResolvedModel] = field(default_factory=list)
    checked: list[tuple[str, str | None]] = field(default_factory=list)
    pings: int = 0

    @property
    def name(self) -> str:
        return self.backend_name

    def add(self, model: ResolvedModel, *, revision: str | None = None) -> ResolvedModel:
        """Publish ``model`` at the default branch (or at ``revision``) and point upstream at
        its commit."""
        if revision is None:
            self.models[model.repo_id] = model
        else:
            self.revisions[(model.repo_id, revision)] = model
        self.upstream[(model.repo_id, revision)] = model.revision
        return model

    async def resolve(self, repo_id: str, revision: str | None) -> ResolvedModel:
        self.resolved.append((repo_id, revision))
        self._maybe_fail("resolve")
        if revision is None:
            if repo_id not in self.models:
                raise RepoNotFound(f"repository {repo_id} not found")
            return self.models[repo_id]
        model = self.revisions.get((repo_id, revision))
        if model is None:
            raise RevisionNotFound(f"revision {revision} of {repo_id} not found")
        return model

    async def download(self, model: ResolvedModel, progress: ProgressCallback) -> str:
        self.downloaded.append(model)
        for step in self.download_progress:
            progress(step)
        self._maybe_fail("download")
        return f"{self.store_uri}/{model.repo_id}/{model.revision}"

    async def current_revision(self, repo_id: str, revision: str | None) -> str:
        self.checked.append((repo_id, revision))
        self._maybe_fail("current_revision")
        sha = self.upstream.get((repo_id, revision))
        if sha is None:
            raise RepoNotFound(f"repository {repo_id} not found")
        return sha

    async def ping(self) -> None:
        self._maybe_fail("ping")
        self.pings += 1

    def _maybe_fail(self, method: str) -> None:
        if (error := self.fail.get(method)) is not None:
            raise error


def _conforms(backend: FakeRegistry) -> RegistryBackend:
    return backend  # mypy: the fake is a RegistryBackend
