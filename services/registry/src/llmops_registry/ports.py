"""What the handlers need from a model registry, and the errors a registry may raise.

The handlers decide *what* an import means (which architectures the platform accepts, which
``config.json`` keys give the context length, what the reports say); a backend only knows *how*
to talk to the registry (Hugging Face Hub calls, or its cache when offline). An import is two
steps so that the platform's rules run between them: :meth:`RegistryBackend.resolve` learns the
facts without downloading weights, the handler checks them, and only then
:meth:`RegistryBackend.download` fetches the files. An unsupported model is refused before a
single weight byte is transferred.

Backends translate every registry failure into a :class:`RegistryError` whose message is the
one-line ``reason`` of the Failed report (never containing a token).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from llmops_shared.events.payloads.catalog import ImportProgress
from llmops_shared.streams import StatusSink as StatusSink  # re-exported for app.py

ProgressCallback = Callable[[ImportProgress], None]
"""Called with the latest progress of an import; must be safe to call from any thread."""


class RegistryError(Exception):
    """A registry failure the import reports as Failed; ``str(exc)`` is the reason."""


class RepoNotFound(RegistryError):
    """The repository does not exist (or is private and the token cannot see it)."""


class AccessDenied(RegistryError):
    """The repository is gated or private and the configured token does not grant access."""


class RevisionNotFound(RegistryError):
    """The repository exists but the branch, tag or commit does not."""


class InvalidModel(RegistryError):
    """The repository is not an importable model (no or malformed ``config.json``, ...)."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 5xx/429, after the retries."""


class NotInOfflineCache(RegistryError):
    """Offline mode: the repository or revision is not in the seeded cache."""


class OfflineMode(RegistryError):
    """Offline mode: the operation needs the registry itself (an update check)."""


@dataclass(frozen=True)
class RepoFile:
    """One file of the repository at the resolved commit (``size`` None when not reported)."""

    path: str
    size: int | None


@dataclass(frozen=True)
class ResolvedModel:
    """What :meth:`RegistryBackend.resolve` learned: the commit and the metadata at it.

    ``config`` is the parsed ``config.json`` (a JSON object; the handler reads architectures
    and context length from it).
    """

    repo_id: str
    revision: str
    url: str
    config: Mapping[str, Any]
    files: tuple[RepoFile, ...]
    license: str | None = None
    gated: bool = False
    private: bool = False
    last_modified: datetime | None = None
    complete_listing: bool = True
    """``files`` is the commit's whole file list. False only offline on a cache that has no
    saved list of the commit (seeded by ``huggingface_hub`` alone): ``files`` is then what the
    cache holds, and may lack files the commit has."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Sum of the known file sizes."""
        return sum(f.size or 0 for f in self.files)


class RegistryBackend(Protocol):
    """Resolves, downloads and checks models of one registry.

    Implementations are idempotent: resolving twice gives the same facts, and downloading a
    commit whose snapshot already exists reuses it. Failures are raised as
    :class:`RegistryError` subclasses; transient ones are retried inside the backend first.
    """

    @property
    def name(self) -> str:
        """Short backend name for logs (``huggingface``, ``huggingface-offline``)."""
        ...

    async def resolve(self, repo_id: str, revision: str | None) -> ResolvedModel:
        """Pin ``revision`` (None: the default branch) to a commit and read its metadata."""
        ...

    async def download(self, model: ResolvedModel, progress: ProgressCallback) -> str:
        """Materialise the snapshot of ``model`` in the model store; returns its URI.

        Either the complete snapshot exists afterwards, or nothing does (a failed download
        removes its partial directory). An existing snapshot is reused only when it holds every
        file of ``model``.
        """
        ...

    async def current_revision(self, repo_id: str, revision: str | None) -> str:
        """The commit ``revision`` (None: the default branch) points at upstream now."""
        ...

    async def ping(self) -> None:
        """Raise unless the registry answers now (logged at start-up; not a readiness check)."""
        ...


@dataclass(frozen=True)
class RegistryPorts:
    """What the handlers are bound to in ``app.py``."""

    backend: RegistryBackend
    sink: StatusSink | None = None
    progress_interval_s: float = 0.5
