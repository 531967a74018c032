"""What the handlers need from a Git hosting backend and from MLflow, and the errors they raise.

The handlers decide *what* a values file must contain (:mod:`llmops_github_sync.values`); a
backend only knows *how* to read a file and write it back safely. The write is optimistic: the
backend reads the current content, calls ``decide`` with it, writes the result conditioned on
what it read (the Contents API sha, the ref's old commit, a fast-forward push) and, when someone
else wrote in between, reads again and calls ``decide`` again (bounded). So the state lives in
the repository itself, as in the MLflow GitHub sync service this one replaces, and two workers
syncing the same run make one commit.

Errors: :class:`~llmops_shared.streams.DependencyUnavailableError` when the backend cannot be
used now (unreachable, rate limited beyond the bound, credentials refused): the consumer pauses
and nothing is dead-lettered. :class:`SyncRejected` for what no retry fixes (the values path is a
file): the handler reports Failed. Anything else is retried by the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pydantic import JsonValue

from llmops_shared.streams import DependencyUnavailableError as DependencyUnavailableError

Action = Literal["created", "updated", "regenerated", "unchanged", "skipped"]


class SyncRejected(Exception):
    """The repository cannot take the file, and retrying will not change that."""


class RunNotFound(Exception):
    """MLflow answers that the run cannot be read, and asking again will not change that: it
    does not exist (``RESOURCE_DOES_NOT_EXIST``, deleted and garbage-collected) or MLflow
    refused the request as invalid (another 4xx besides credentials and rate limits)."""


class SyncConflict(Exception):
    """Others kept writing the same file or branch through every retry (retryable later)."""


@dataclass(frozen=True)
class Plan:
    """What one file must become; ``content`` None means it is already right (no write)."""

    path: str
    action: Action
    content: bytes | None
    message: str = ""
    max_model_len: int | None = None
    capped: bool = False
    note: str | None = None

    @property
    def changes(self) -> bool:
        return self.content is not None


Decide = Callable[[bytes | None], Plan]
"""Current content of the file (None: absent) -> the plan. Pure; may be called again."""

DecideMany = Callable[[str, bytes | None], Plan]
"""(path, current content) -> the plan of that path."""

BatchMessage = Callable[[Sequence[Plan]], str]
"""The commit message of a batch, from the plans that change something."""


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one sync: the final plans, the commit made (None: none) and the PR."""

    plans: Sequence[Plan]
    commit: str | None = None
    pull_request: str | None = None


class ValuesRepository(Protocol):
    """A Git repository the values files are written to."""

    @property
    def name(self) -> str:
        """``github`` or ``git``."""
        ...

    def describe(self) -> dict[str, JsonValue]:
        """Repository, branch, backend, mode (never a secret)."""
        ...

    async def sync_file(self, path: str, decide: Decide, *, run_id: str) -> SyncResult:
        """Make ``path`` what ``decide`` says, in at most one commit (none when unchanged)."""
        ...

    async def sync_files(
        self, paths: Sequence[str], decide: DecideMany, message: BatchMessage
    ) -> SyncResult:
        """Make every path right in ONE commit (none when all are unchanged)."""
        ...

    async def ping(self) -> None:
        """Raise unless the repository answers now."""
        ...


@dataclass(frozen=True)
class ModelVersionRecord:
    """One model version as MLflow lists it."""

    model_name: str
    version: str
    run_id: str | None
    experiment_id: str | None
    created_at: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    run_missing: str | None = None
    """Why the run could not be read (it is gone from MLflow), when it could not."""


class ModelRegistry(Protocol):
    """MLflow's model registry, for reconciliation and experiment lookups."""

    async def list_versions(self) -> list[ModelVersionRecord]:
        """Every model version (all pages)."""
        ...

    async def experiment_of(self, run_id: str) -> str:
        """The experiment of a run; :class:`RunNotFound` when MLflow says it is not there."""
        ...

    async def ping(self) -> None:
        """Raise unless MLflow answers now."""
        ...

    def describe(self) -> dict[str, JsonValue]:
        """The tracking URI (credentials removed)."""
        ...


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` can name a values file and a branch: 1-64 letters, digits, ``_`` or
    ``-``, not starting with ``_`` or ``-`` (MLflow's own run ids are 32 hex digits). Anything
    else (``../x``, ``a/b``, spaces...) would steer the file outside the values path."""
    return bool(_RUN_ID.fullmatch(run_id))


def check_relative_path(path: str) -> str:
    """``path`` when it is a plain relative path inside the repository, else SyncRejected."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
        or any(part.lower() == ".git" for part in parts)
    ):
        raise SyncRejected(f"{path!r} is not a plain relative path inside the repository")
    return path
