"""The Hugging Face Hub backend: the only module of the service that imports huggingface_hub.

Online, :meth:`HubBackend.resolve` asks ``model_info`` (with file sizes) to pin the revision to a
commit, then downloads ``config.json`` of that commit into the ``huggingface_hub`` cache and
parses it; :meth:`HubBackend.download` fetches every file of the commit into the same cache
(``hf_hub_download``, so an interrupted import resumes from what is cached and the cache doubles
as the offline cache) and materialises the snapshot in the model store. Every Hub call is
blocking, so it runs in a thread (``asyncio.to_thread``), and is retried with exponential
backoff (tenacity) while the Hub is unreachable or answers 5xx/429/408; after the last attempt
the import fails with "Hugging Face Hub unreachable at <endpoint> after N attempts".

Online resolve also saves the commit's facts (every file with its size, license, gated,
private, last modified) as a small manifest in the cache, ``models--<owner>--<name>/.llmops/
manifests/<sha>.json`` (a directory ``huggingface_hub`` neither writes nor scans), and only then
records ``refs/<revision>``, so an offline worker on that cache knows the whole commit even when
only ``config.json`` of it was fetched.

Offline (``HF_HUB_OFFLINE=true``) nothing is requested: the revision is resolved through the
cache's ``refs/``, ``config.json`` comes from the cached snapshot, the facts from the manifest
(else, for a cache seeded by ``huggingface_hub`` alone, from the files cached), and a download
materialises the store from the cached files; one that needs a file that is not cached fails.

The client is always given the endpoint and the token explicitly (``token=False`` when none is
configured, so a token saved by ``hf auth login`` is never used by accident). The token
never appears in a log line or a reason: messages are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import httpx2
from huggingface_hub import (
    HfApi,
    get_hf_file_metadata,
    get_session,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import ModelInfo
from huggingface_hub.repocard import metadata_load
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from llmops_registry.adapters.store import (
    InvalidRepoId,
    SnapshotStore,
    check_repo_id,
    repo_dir_name,
    safe_relative_path,
)
from llmops_registry.ports import (
    AccessDenied,
    InvalidModel,
    NotInOfflineCache,
    OfflineMode,
    ProgressCallback,
    RegistryError,
    RegistryUnavailable,
    RepoFile,
    RepoNotFound,
    ResolvedModel,
    RevisionNotFound,
)
from llmops_shared.events.payloads.catalog import ImportProgress
from llmops_shared.logging import get_logger

T = TypeVar("T")

CONFIG_FILE: Final = "config.json"
DEFAULT_BRANCH: Final = "main"
MAX_RETRY_WAIT_S: Final = 30.0
TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")
MANIFEST_DIR: Final = ".llmops/manifests"
"""Under a repo's cache dir (``models--<owner>--<name>/``): ``<sha>.json`` per resolved commit."""
MANIFEST_VERSION: Final = 1

_log = get_logger(__name__)


class _ByteCounter:
    """Stands in for the tqdm progress bar ``hf_hub_download`` opens per file.

    ``huggingface_hub`` calls a non-tqdm ``tqdm_class`` with the bar's keyword arguments and
    then uses it as a context manager with ``update(n)`` (the Xet path also sets ``total``);
    this forwards the byte counts and prints nothing.
    """

    total: int | None = None

    def __init__(self, on_bytes: Callable[[int], None] | None = None) -> None:
        self._on_bytes = on_bytes

    def __enter__(self) -> _ByteCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float | None = 1) -> None:
        if self._on_bytes is not None and n:
            self._on_bytes(int(n))

    def close(self) -> None:
        return None


class _DownloadProgress:
    """Bytes and files done of one snapshot download; fed from the download thread."""

    def __init__(self, callback: ProgressCallback, files_total: int, bytes_total: int) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = 0
        self._bytes_settled = 0  # bytes of the files done
        self._bytes_current = 0  # bytes of the file in flight

    def start_file(self) -> None:
        with self._lock:
            self._bytes_current = 0
        self._emit()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes_current = max(0, self._bytes_current + n)
        self._emit()

    def finish_file(self, size: int | None) -> None:
        with self._lock:
            self._bytes_settled += size if size is not None else self._bytes_current
            self._bytes_current = 0
            self.files_done += 1
        self._emit()

    def _emit(self) -> None:
        with self._lock:
            done = min(self._bytes_settled + self._bytes_current, max(self.bytes_total, 0))
            progress = ImportProgress(
                stage="downloading",
                files_done=self.files_done,
                files_total=self.files_total,
                bytes_done=done if self.bytes_total else self._bytes_settled,
                bytes_total=self.bytes_total,
            )
        self._callback(progress)


class HubBackend:
    """:class:`llmops_registry.ports.RegistryBackend` on the Hugging Face Hub (or its cache)."""

    def __init__(
        self,
        *,
        endpoint: str,
        token: SecretStr | None,
        cache_dir: Path,
        store: SnapshotStore,
        offline: bool = False,
        retry_attempts: int = 4,
        retry_wait_s: float = 1.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token.get_secret_value() if token is not None else None
        self.cache_dir = cache_dir
        self.store = store
        self.offline = offline
        self._attempts = retry_attempts
        self._wait_s = retry_wait_s
        self._timeout_s = timeout_s
        self._api = HfApi(endpoint=self.endpoint, token=self._token or False)
        try:
            self.store.sweep()  # staging dirs left by killed workers
        except Exception as exc:  # noqa: BLE001 - housekeeping never stops the worker
            _log.warning("stale_staging_sweep_failed", error=f"{type(exc).__name__}: {exc}")

    @property
    def name(self) -> str:
        return "huggingface-offline" if self.offline else "huggingface"

    # ------------------------------------------------------------------ the port

    async def resolve(self, repo_id: str, revision: str | None) -> ResolvedModel:
        _check_repo_id(repo_id)
        if self.offline:
            return await asyncio.to_thread(self._resolve_offline, repo_id, revision)
        info = await self._call(
            repo_id,
            revision,
            "model info",
            partial(
                self._api.model_info,
                repo_id,
                revision=revision,
                files_metadata=True,
                timeout=self._timeout_s,
            ),
        )
        sha = info.sha
        if not sha or not _COMMIT_RE.match(sha):
            raise RegistryError(
                f"{self.endpoint} did not report a commit for {repo_id} at {revision or 'HEAD'}"
            )
        files = tuple(
            RepoFile(
                path=s.rfilename,
                size=s.size if s.size is not None else (s.lfs.size if s.lfs else None),
            )
            for s in info.siblings or ()
        )
        if CONFIG_FILE not in {f.path for f in files}:
            raise InvalidModel(f"repository {repo_id} has no {CONFIG_FILE} at {sha}")
        config_path = await self._call(
            repo_id,
            sha,
            f"download of {CONFIG_FILE}",
            partial(self._fetch, repo_id, CONFIG_FILE, sha),
        )
        resolved = ResolvedModel(
            repo_id=repo_id,
            revision=sha,
            url=self.model_url(repo_id, sha),
            config=_read_config(Path(config_path), f"{CONFIG_FILE} of {repo_id} at {sha}"),
            files=files,
            license=_license_of(info),
            gated=bool(info.gated),
            private=bool(info.private),
            last_modified=info.last_modified,
        )
        if self._save_manifest(resolved):  # a ref without the manifest would mislead offline
            self._remember_ref(repo_id, revision or DEFAULT_BRANCH, sha)
        return resolved

    async def download(self, model: ResolvedModel, progress: ProgressCallback) -> str:
        _check_repo_id(model.repo_id)
        listing = [(f.path, f.size) for f in model.files]
        existing = self.store.existing(model.repo_id, model.revision)
        if existing is not None:
            try:
                stale = await asyncio.to_thread(self.store.missing, existing, listing)
            except ValueError as exc:  # an unsafe path in the listing
                raise InvalidModel(f"repository {model.repo_id}: {exc}") from None
            if not stale:
                _log.info("snapshot_reused", repo_id=model.repo_id, sha=model.revision)
                return self.store.uri(existing)
            _log.warning(
                "snapshot_incomplete",
                repo_id=model.repo_id,
                sha=model.revision,
                missing=len(stale),
                note="downloaded again and replaced",
            )
        if self.offline:
            self._check_cached(model)
        counter = _DownloadProgress(progress, len(model.files), model.total_bytes)
        staging = self.store.staging(model.repo_id, model.revision)
        try:
            counter.start_file()
            for repo_file in model.files:
                try:
                    safe_relative_path(repo_file.path)
                except ValueError as exc:
                    raise InvalidModel(f"repository {model.repo_id}: {exc}") from None
                counter.start_file()
                if self.offline:
                    source = self._cached_file(model.repo_id, model.revision, repo_file.path)
                else:
                    source = Path(
                        await self._call(
                            model.repo_id,
                            model.revision,
                            f"download of {repo_file.path}",
                            partial(
                                self._fetch,
                                model.repo_id,
                                repo_file.path,
                                model.revision,
                                counter.add_bytes,
                                counter.start_file,
                            ),
                        )
                    )
                await asyncio.to_thread(self.store.place, source, staging, repo_file.path)
                counter.finish_file(repo_file.size)
            final = self.store.commit(
                staging,
                self.store.snapshot_dir(model.repo_id, model.revision),
                replace=existing is not None,
            )
        except BaseException:
            self.store.discard(staging)
            raise
        _log.info(
            "snapshot_downloaded",
            repo_id=model.repo_id,
            sha=model.revision,
            files=len(model.files),
            bytes=model.total_bytes,
        )
        return self.store.uri(final)

    async def current_revision(self, repo_id: str, revision: str | None) -> str:
        _check_repo_id(repo_id)
        if self.offline:
            raise OfflineMode(
                "offline mode (HF_HUB_OFFLINE=true): the Hub is not contacted, so upstream is "
                "unknown"
            )
        info = await self._call(
            repo_id,
            revision,
            "model info",
            partial(
                self._api.model_info,
                repo_id,
                revision=revision,
                expand=["sha"],
                timeout=self._timeout_s,
            ),
        )
        if not info.sha:
            raise RegistryError(f"{self.endpoint} did not report a commit for {repo_id}")
        return info.sha

    async def ping(self) -> None:
        if self.offline:
            return
        session = get_session()
        response = await asyncio.to_thread(
            session.head, f"{self.endpoint}/api/models", timeout=min(self._timeout_s, 5.0)
        )
        if response.status_code >= 500:
            raise RegistryUnavailable(f"{self.endpoint} answered HTTP {response.status_code}")

    def model_url(self, repo_id: str, sha: str) -> str:
        """Where a person looks at the model at the pinned commit."""
        return f"{self.endpoint}/{repo_id}/tree/{sha}"

    # ------------------------------------------------------------------ Hub calls

    def _fetch(
        self,
        repo_id: str,
        filename: str,
        revision: str,
        on_bytes: Callable[[int], None] | None = None,
        on_attempt: Callable[[], None] | None = None,
    ) -> str:
        """``hf_hub_download`` of one file at a commit into the cache (blocking).

        A file already in the cache for this commit costs no request. Otherwise one HEAD
        without the client's own retries comes first: ``hf_hub_download`` retries a failing
        HEAD itself (5 times, ~23 s of backoff) and then hides the cause behind a "cannot find
        the requested files in the local cache" error; asking first lets an outage fail fast
        into :meth:`_call`'s retry policy with the Hub's own answer (HTTP 503, gated, ...).
        """
        if on_attempt is not None:
            on_attempt()
        cached = try_to_load_from_cache(
            repo_id, filename, cache_dir=self.cache_dir, revision=revision
        )
        if isinstance(cached, str):
            return cached
        get_hf_file_metadata(
            hf_hub_url(repo_id, filename, revision=revision, endpoint=self.endpoint),
            token=self._token or False,
            timeout=self._timeout_s,
            endpoint=self.endpoint,
            retry_on_errors=False,
        )
        bars: list[_ByteCounter] = []

        def bar(**_: object) -> _ByteCounter:
            # only the first bar counts: a Xet download opens a second one for network bytes
            counter = _ByteCounter(None if bars else on_bytes)
            bars.append(counter)
            return counter

        return self._api.hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=self.cache_dir,
            etag_timeout=self._timeout_s,
            tqdm_class=cast(Any, bar),
        )

    async def _call(
        self, repo_id: str, revision: str | None, what: str, call: Callable[[], T]
    ) -> T:
        """Run a blocking Hub call in a thread; retry transient failures; translate errors."""
        attempts = 0

        def before_sleep(state: Any) -> None:
            _log.warning(
                "hub_call_retrying",
                call=what,
                repo_id=repo_id,
                attempt=state.attempt_number,
                of=self._attempts,
                error=self._scrub(_short(state.outcome.exception())),
            )

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self._wait_s, max=MAX_RETRY_WAIT_S),
                retry=retry_if_exception(_transient),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await asyncio.to_thread(call)
        except Exception as exc:  # noqa: BLE001 - translated; unknown ones are re-raised as is
            raise self._translate(exc, repo_id, revision, what, attempts) from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    def _translate(
        self, exc: Exception, repo_id: str, revision: str | None, what: str, attempts: int
    ) -> Exception:
        """The :class:`RegistryError` that says what went wrong, in one scrubbed line."""
        where = self.endpoint
        cause = exc.__cause__
        if (
            isinstance(exc, LocalEntryNotFoundError)
            and isinstance(cause, Exception)
            and not isinstance(cause, FileMetadataError)
        ):
            exc = cause  # the Hub's own answer says more
        if _transient(exc):
            return RegistryUnavailable(
                self._scrub(
                    f"Hugging Face Hub unreachable at {where} after {attempts} attempts: "
                    f"{_short(exc)}"
                )
            )
        if isinstance(exc, GatedRepoError):
            need = (
                "HF_TOKEN is not set"
                if self._token is None
                else "the token in HF_TOKEN has not been granted access"
            )
            return AccessDenied(
                f"repository {repo_id} on {where} is gated and {need}: request access at "
                f"{where}/{repo_id} and set HF_TOKEN to a token of an account that has it"
            )
        if isinstance(exc, RepositoryNotFoundError):
            hint = (
                "if it is private, set HF_TOKEN to a token that can read it"
                if self._token is None
                else "or the token in HF_TOKEN cannot read it"
            )
            return RepoNotFound(f"repository {repo_id} not found on {where} ({hint})")
        if isinstance(exc, RevisionNotFoundError):
            wanted = revision or DEFAULT_BRANCH
            return RevisionNotFound(
                f"revision {wanted} not found in repository {repo_id} on {where}"
            )
        if isinstance(exc, RemoteEntryNotFoundError):
            return InvalidModel(
                f"{what} failed: the file is not in {repo_id} at {revision} on {where}"
            )
        if isinstance(exc, HfHubHTTPError) and exc.response.status_code in (401, 403):
            return AccessDenied(
                f"access to {repo_id} on {where} denied (HTTP {exc.response.status_code}): "
                "check HF_TOKEN"
            )
        if isinstance(exc, HfHubHTTPError):
            return RegistryError(
                self._scrub(f"{what} for {repo_id} failed on {where}: {_short(exc)}")
            )
        if isinstance(exc, LocalEntryNotFoundError) and isinstance(
            exc.__cause__, FileMetadataError
        ):
            return RegistryError(
                self._scrub(
                    f"{where} does not answer like a Hugging Face Hub ({what} of {repo_id}): "
                    f"{_short(exc.__cause__)}"
                )
            )
        if isinstance(exc, OfflineModeIsEnabled):
            return RegistryError(
                "the huggingface_hub client is in offline mode (HF_HUB_OFFLINE is set in its "
                "environment) but the worker is configured online"
            )
        if isinstance(exc, HFValidationError):
            return RegistryError(self._scrub(f"invalid repository id or revision: {exc}"))
        if isinstance(exc, RegistryError):
            return exc
        return exc  # unknown: the handler reports it as an unexpected failure

    def _scrub(self, text: str) -> str:
        """Remove the token from a message (defence in depth: the client never echoes it)."""
        return text.replace(self._token, "***") if self._token else text

    # ------------------------------------------------------------------ offline cache

    def _storage(self, repo_id: str) -> Path:
        return self.cache_dir / f"models--{repo_dir_name(repo_id)}"

    def _manifest_path(self, repo_id: str, sha: str) -> Path:
        return self._storage(repo_id) / MANIFEST_DIR / f"{sha}.json"

    def _save_manifest(self, model: ResolvedModel) -> bool:
        """Save the commit's facts beside the cache's ``refs/`` (atomically); False if it could
        not be written (logged: the import goes on, the offline cache just does not learn it)."""
        path = self._manifest_path(model.repo_id, model.revision)
        document = {
            "version": MANIFEST_VERSION,
            "repo_id": model.repo_id,
            "sha": model.revision,
            "files": [{"path": f.path, "size": f.size} for f in model.files],
            "license": model.license,
            "gated": model.gated,
            "private": model.private,
            "last_modified": (
                model.last_modified.isoformat() if model.last_modified is not None else None
            ),
        }
        text = json.dumps(document, indent=1, sort_keys=True)
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                return True
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            _log.warning(
                "cache_manifest_not_written",
                repo_id=model.repo_id,
                sha=model.revision,
                error=str(exc),
                note="refs/ not written either: an offline worker will not resolve this import",
            )
            return False
        return True

    def _load_manifest(self, repo_id: str, sha: str) -> _Manifest | None:
        """The facts an online resolve saved for ``sha``; None when absent or unreadable."""
        path = self._manifest_path(repo_id, sha)
        if not path.is_file():
            return None
        try:
            return _Manifest.parse(json.loads(path.read_text(encoding="utf-8")), repo_id, sha)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            _log.warning("cache_manifest_ignored", path=str(path), error=str(exc))
            return None

    def _remember_ref(self, repo_id: str, revision: str, sha: str) -> None:
        """Record ``revision -> sha`` in the cache's ``refs/`` as huggingface_hub does when it
        downloads by branch name (files are fetched by sha here), so an offline worker on this
        cache resolves the same branch or tag. Best effort; only after the manifest is saved."""
        if _COMMIT_RE.match(revision) or not _safe_ref(revision):
            return
        ref = self._storage(repo_id) / "refs" / revision
        try:
            ref.parent.mkdir(parents=True, exist_ok=True)
            if not ref.is_file() or ref.read_text() != sha:
                ref.write_text(sha)
        except OSError as exc:
            _log.warning("cache_ref_not_written", repo_id=repo_id, ref=revision, error=str(exc))

    def _resolve_offline(self, repo_id: str, revision: str | None) -> ResolvedModel:
        storage = self._storage(repo_id)
        if not (storage / "snapshots").is_dir():
            raise NotInOfflineCache(
                f"repository {repo_id} is not in the offline cache at {self.cache_dir} "
                "(HF_HUB_OFFLINE=true); seed it with huggingface_hub first"
            )
        wanted = revision or DEFAULT_BRANCH
        sha: str | None = None
        if _COMMIT_RE.match(wanted) and (storage / "snapshots" / wanted).is_dir():
            sha = wanted
        elif _safe_ref(wanted):
            ref = storage / "refs" / wanted
            if ref.is_file():
                sha = ref.read_text().strip()
        if not sha or not _COMMIT_RE.match(sha) or not (storage / "snapshots" / sha).is_dir():
            raise NotInOfflineCache(
                f"revision {wanted} of {repo_id} is not in the offline cache at {self.cache_dir} "
                "(HF_HUB_OFFLINE=true)"
            )
        snapshot = storage / "snapshots" / sha
        config_path = snapshot / CONFIG_FILE
        if not config_path.exists():
            raise InvalidModel(
                f"{CONFIG_FILE} of {repo_id} at {sha} is not in the offline cache at "
                f"{self.cache_dir}"
            )
        config = _read_config(config_path, f"{CONFIG_FILE} of {repo_id} at {sha}")
        url = self.model_url(repo_id, sha)
        manifest = self._load_manifest(repo_id, sha)
        if manifest is not None:
            return ResolvedModel(
                repo_id=repo_id,
                revision=sha,
                url=url,
                config=config,
                files=manifest.files,
                license=manifest.license or _cached_license(snapshot),
                gated=manifest.gated,
                private=manifest.private,
                last_modified=manifest.last_modified,
            )
        # seeded by huggingface_hub alone: the cached files are all that is known
        files = tuple(
            RepoFile(path=path.relative_to(snapshot).as_posix(), size=path.stat().st_size)
            for path in sorted(snapshot.rglob("*"))
            if path.is_file()
        )
        modified = datetime.fromtimestamp(config_path.resolve().stat().st_mtime, UTC)
        return ResolvedModel(
            repo_id=repo_id,
            revision=sha,
            url=url,
            config=config,
            files=files,
            license=_cached_license(snapshot),
            last_modified=modified,
            complete_listing=False,
        )

    def _check_cached(self, model: ResolvedModel) -> None:
        """Offline: fail unless every file of ``model`` is in the cache (before staging)."""
        snapshot = self._storage(model.repo_id) / "snapshots" / model.revision
        try:
            missing = self.store.missing(snapshot, [(f.path, f.size) for f in model.files])
        except ValueError as exc:  # an unsafe path in a manifest
            raise InvalidModel(f"repository {model.repo_id}: {exc}") from None
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise NotInOfflineCache(
                f"{model.repo_id} at {model.revision} is only partly in the offline cache at "
                f"{self.cache_dir} (HF_HUB_OFFLINE=true): {len(missing)} of {len(model.files)} "
                f"files missing ({shown}); import it online with download=true, or seed it with "
                "huggingface_hub, first"
            )

    def _cached_file(self, repo_id: str, sha: str, path: str) -> Path:
        cached = self._storage(repo_id) / "snapshots" / sha / safe_relative_path(path)
        if not cached.exists():
            raise NotInOfflineCache(
                f"file {path} of {repo_id} at {sha} is not in the offline cache at "
                f"{self.cache_dir} (HF_HUB_OFFLINE=true)"
            )
        return cached


class _Manifest:
    """The facts of one commit saved by an online resolve (:meth:`HubBackend._save_manifest`)."""

    def __init__(
        self,
        files: tuple[RepoFile, ...],
        license_: str | None,
        gated: bool,
        private: bool,
        last_modified: datetime | None,
    ) -> None:
        self.files = files
        self.license = license_
        self.gated = gated
        self.private = private
        self.last_modified = last_modified

    @classmethod
    def parse(cls, data: Any, repo_id: str, sha: str) -> _Manifest:
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise ValueError("not a manifest of a known version")
        if data.get("repo_id") != repo_id or data.get("sha") != sha:
            raise ValueError("manifest of another repository or commit")
        files: list[RepoFile] = []
        for entry in data["files"]:
            path, size = entry["path"], entry.get("size")
            if not isinstance(path, str):
                raise ValueError("a file path is not a string")
            safe_relative_path(path)
            if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                raise ValueError(f"size of {path} is not an integer")
            files.append(RepoFile(path=path, size=size))
        if CONFIG_FILE not in {f.path for f in files}:
            raise ValueError(f"the file list has no {CONFIG_FILE}")
        modified = data.get("last_modified")
        return cls(
            files=tuple(files),
            license_=_license_value(data.get("license")),
            gated=bool(data.get("gated")),
            private=bool(data.get("private")),
            last_modified=datetime.fromisoformat(modified) if isinstance(modified, str) else None,
        )


def _check_repo_id(repo_id: str) -> None:
    """:class:`InvalidModel` for an id that is not a Hub id (see :func:`check_repo_id`)."""
    try:
        check_repo_id(repo_id)
    except InvalidRepoId as exc:
        raise InvalidModel(str(exc)) from None


def _cached_license(snapshot: Path) -> str | None:
    """The ``license`` of the cached model card's front matter, if any."""
    readme = snapshot / "README.md"
    if not readme.is_file():
        return None
    try:
        card = metadata_load(readme) or {}
    except Exception:  # noqa: BLE001 - a broken model card only costs the license
        card = {}
    return _license_value(card.get("license"))


def _safe_ref(revision: str) -> bool:
    """A branch or tag name usable as a path under ``refs/`` (no ``..``, not absolute)."""
    try:
        safe_relative_path(revision)
    except ValueError:
        return False
    return True


def _transient(exc: BaseException) -> bool:
    """Worth another try: no connection, a timeout, or the Hub answering 408/429/5xx."""
    if isinstance(exc, OfflineModeIsEnabled):
        return False
    if isinstance(exc, httpx2.TransportError):
        return True
    if isinstance(exc, HfHubHTTPError):
        return exc.response.status_code in TRANSIENT_STATUS
    if isinstance(exc, LocalEntryNotFoundError):
        # online, hf_hub_download raises this when its HEAD failed (after its own retries)
        # and the file is not cached: as transient as the cause
        return exc.__cause__ is not None and _transient(exc.__cause__)
    return False


def _short(exc: BaseException | None) -> str:
    """One line about ``exc``: ``HTTP 503`` for Hub answers, else the first line of the error."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return _short(exc.__cause__)
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        message = exc.server_message or ""
        first = message.strip().splitlines()[0] if message.strip() else ""
        return f"HTTP {status}" + (f" {first}" if first else "")
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _read_config(path: Path, where: str) -> Mapping[str, Any]:
    """The parsed ``config.json``; :class:`InvalidModel` unless it is a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModel(f"{where} is malformed: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidModel(f"{where} is malformed: not a JSON object")
    return data


def _license_value(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:256]
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0][:256]
    return None


def _license_of(info: ModelInfo) -> str | None:
    """The model card's ``license``, else the ``license:<id>`` tag."""
    card = info.card_data
    if card is not None:
        found = _license_value(card.get("license"))
        if found:
            return found
    for tag in info.tags or ():
        if tag.startswith("license:"):
            return _license_value(tag.removeprefix("license:"))
    return None
