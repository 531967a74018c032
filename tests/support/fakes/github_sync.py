"""In-memory fakes of github-sync's ports: a values repository and MLflow's model registry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue

from llmops_github_sync.ports import (
    BatchMessage,
    Decide,
    DecideMany,
    ModelRegistry,
    ModelVersionRecord,
    Plan,
    RunNotFound,
    SyncResult,
    ValuesRepository,
    check_relative_path,
)


@dataclass(frozen=True)
class Commit:
    """One commit the fake repository made."""

    sha: str
    message: str
    files: dict[str, bytes]


@dataclass
class FakeRepository:
    """A branch as a dict (path -> bytes) and its commits. Like the real backends it reads the
    file, asks ``decide``, and commits only a plan that changes something; with
    ``pull_requests`` every commit comes with a pull request. ``fail`` (by method:
    ``sync_file``, ``sync_files``) is raised before anything is read."""

    backend_name: str = "fake-git"
    pull_requests: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    fail: dict[str, BaseException] = field(default_factory=dict)
    synced: list[tuple[str, str]] = field(default_factory=list)
    """(path, run id) of every ``sync_file``."""

    @property
    def name(self) -> str:
        return self.backend_name

    def describe(self) -> dict[str, JsonValue]:
        return {"backend": self.backend_name, "files": len(self.files)}

    async def sync_file(self, path: str, decide: Decide, *, run_id: str) -> SyncResult:
        self._maybe_fail("sync_file")
        self.synced.append((path, run_id))
        plan = decide(self.files.get(check_relative_path(path)))
        return self._commit([plan], plan.message)

    async def sync_files(
        self, paths: Sequence[str], decide: DecideMany, message: BatchMessage
    ) -> SyncResult:
        self._maybe_fail("sync_files")
        plans = [decide(path, self.files.get(check_relative_path(path))) for path in paths]
        return self._commit(plans, message([p for p in plans if p.changes]))

    async def ping(self) -> None:
        self._maybe_fail("ping")

    def _commit(self, plans: Sequence[Plan], message: str) -> SyncResult:
        changed = {p.path: p.content for p in plans if p.content is not None}
        if not changed:
            return SyncResult(plans=plans)
        self.files.update(changed)
        sha = hashlib.sha1(f"{len(self.commits)}:{message}".encode()).hexdigest()
        self.commits.append(Commit(sha=sha, message=message, files=changed))
        pull = f"https://git.test/pulls/{len(self.commits)}" if self.pull_requests else None
        return SyncResult(plans=plans, commit=sha, pull_request=pull)

    def _maybe_fail(self, method: str) -> None:
        if (error := self.fail.get(method)) is not None:
            raise error


@dataclass
class FakeModelRegistry:
    """MLflow's registry: ``versions`` as listed, ``experiments`` (run id -> experiment id);
    a run not in ``experiments`` is gone (:class:`RunNotFound`). ``fail`` (by method) raises."""

    versions: list[ModelVersionRecord] = field(default_factory=list)
    experiments: dict[str, str] = field(default_factory=dict)
    fail: dict[str, BaseException] = field(default_factory=dict)
    looked_up: list[str] = field(default_factory=list)

    async def list_versions(self) -> list[ModelVersionRecord]:
        self._maybe_fail("list_versions")
        return list(self.versions)

    async def experiment_of(self, run_id: str) -> str:
        self.looked_up.append(run_id)
        self._maybe_fail("experiment_of")
        if run_id not in self.experiments:
            raise RunNotFound(f"run {run_id} does not exist")
        return self.experiments[run_id]

    async def ping(self) -> None:
        self._maybe_fail("ping")

    def describe(self) -> dict[str, JsonValue]:
        return {"tracking_uri": "http://mlflow.test"}

    def _maybe_fail(self, method: str) -> None:
        if (error := self.fail.get(method)) is not None:
            raise error


def _conforms(repository: FakeRepository, registry: FakeModelRegistry) -> None:
    """mypy: the fakes are the ports."""
    _repository: ValuesRepository = repository
    _registry: ModelRegistry = registry
