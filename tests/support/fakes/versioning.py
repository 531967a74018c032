"""An in-memory :class:`~llmops_versioning.ports.VersioningBackend`: versions in a dict."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    RestoreRequest,
    VersioningBackend,
    VersioningFailed,
    VersionRequest,
)


@dataclass
class FakeVersioning:
    """Records each version's ``data`` (storage uri -> {path: size}) as its facts; idempotent
    per (dataset, tag, version id) and refusing a tag taken by another version, as the port
    requires. ``fail`` (by method: ``create_version``, ``restore``) is raised after the
    ``progress`` steps were reported; ``gate``, when set, is awaited inside every call (to
    hold a call open while a test looks at the locks)."""

    backend_name: Literal["dvc", "builtin"] = "builtin"
    data: dict[str, dict[str, int]] = field(default_factory=dict)
    progress: Sequence[Progress] = ()
    fail: dict[str, BaseException] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    versions: dict[tuple[str, str], tuple[str, VersionFacts]] = field(default_factory=dict)
    """(dataset id, tag) -> (version id, facts)."""
    restored: dict[str, dict[str, int]] = field(default_factory=dict)
    """target uri -> the files written there."""
    calls: list[VersionRequest | RestoreRequest] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    """dataset id -> calls running now; ``peak`` keeps the most seen at once."""
    peak: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> Literal["dvc", "builtin"]:
        return self.backend_name

    async def create_version(
        self, request: VersionRequest, progress: ProgressCallback
    ) -> VersionFacts:
        async with self._working(request.dataset_id, request, progress, "create_version"):
            key = (request.dataset_id, request.version_tag)
            if key in self.versions:
                version_id, facts = self.versions[key]
                if version_id != request.version_id:
                    raise VersioningFailed(
                        f"tag {request.version_tag} is already version {version_id}"
                    )
                return facts
            files = self.data.get(request.storage_uri)
            if files is None:
                raise VersioningFailed(f"no data at {request.storage_uri}")
            facts = VersionFacts(
                backend=self.backend_name,
                digest=f"digest-{len(self.versions) + 1}",
                file_count=len(files),
                total_bytes=sum(files.values()),
                tag=request.version_tag,
                parent_version_id=request.parent_version_id,
                files=[(path, f"md5-{path}", size) for path, size in sorted(files.items())],
            )
            self.versions[key] = (request.version_id, facts)
            return facts

    async def restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        async with self._working(request.dataset_id, request, progress, "restore"):
            recorded = self.versions.get((request.dataset_id, request.version_tag))
            if recorded is None or recorded[0] != request.version_id:
                raise VersioningFailed(f"version {request.version_tag} is not recorded")
            files = {path: size for path, _, size in recorded[1].files}
            self.restored[request.target_uri] = files
            total = sum(files.values())
            return RestoreFacts(
                version_id=request.version_id,
                target_uri=request.target_uri,
                files_done=len(files),
                files_total=len(files),
                bytes_done=total,
                bytes_total=total,
            )

    async def ping(self) -> None:
        if (error := self.fail.get("ping")) is not None:
            raise error

    @asynccontextmanager
    async def _working(
        self,
        dataset_id: str,
        request: VersionRequest | RestoreRequest,
        progress: ProgressCallback,
        method: str,
    ) -> AsyncIterator[None]:
        """One call: counted as active on its dataset, progress reported, then maybe failed."""
        self.calls.append(request)
        self.active[dataset_id] = self.active.get(dataset_id, 0) + 1
        self.peak[dataset_id] = max(self.peak.get(dataset_id, 0), self.active[dataset_id])
        try:
            if self.gate is not None:
                await self.gate.wait()
            for step in self.progress:
                progress(step)
            if (error := self.fail.get(method)) is not None:
                raise error
            yield
        finally:
            self.active[dataset_id] -= 1


def _conforms(backend: FakeVersioning) -> VersioningBackend:
    return backend  # mypy: the fake is a VersioningBackend
