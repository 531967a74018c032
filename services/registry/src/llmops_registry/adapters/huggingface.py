"""The Hugging Face Hub backend: with its ``hub_*`` siblings, the only modules of the service
that import huggingface_hub.

Online, :meth:`HubBackend.resolve` asks ``model_info`` (with file sizes) to pin the revision to a
commit, then downloads ``config.json`` of that commit into the ``huggingface_hub`` cache and
parses it; :meth:`HubBackend.download` fetches every file of the commit into the same cache
(``hf_hub_download``, so an interrupted import resumes from what is cached and the cache doubles
as the offline cache) and materialises the snapshot in the model store. Every Hub call is
blocking, so it runs in a thread (``asyncio.to_thread``), and is retried with exponential
backoff (tenacity) while the Hub is unreachable or answers 5xx/429/408
(:mod:`~llmops_registry.adapters.hub_errors`); after the last attempt the import fails with
"Hugging Face Hub unreachable at <endpoint> after N attempts".

Online resolve also saves the commit's facts in the cache, and offline (``HF_HUB_OFFLINE=true``)
nothing is requested: both are :mod:`~llmops_registry.adapters.hub_cache`.

The client is always given the endpoint and the token explicitly (``token=False`` when none is
configured, so a token saved by ``hf auth login`` is never used by accident). The token
never appears in a log line or a reason: messages are scrubbed of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from huggingface_hub import (
    HfApi,
    ModelInfo,
    get_hf_file_metadata,
    get_session,
    hf_hub_url,
    try_to_load_from_cache,
)
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from llmops_registry.adapters.hub_cache import OfflineCache
from llmops_registry.adapters.hub_errors import scrub, short, transient, translate
from llmops_registry.adapters.hub_metadata import (
    COMMIT_RE,
    CONFIG_FILE,
    DEFAULT_BRANCH,
    license_of,
    read_config,
)
from llmops_registry.adapters.hub_progress import ByteCounter, DownloadProgress
from llmops_registry.adapters.store import (
    InvalidRepoId,
    SnapshotStore,
    check_repo_id,
    safe_relative_path,
)
from llmops_registry.ports import (
    InvalidModel,
    OfflineMode,
    ProgressCallback,
    RegistryError,
    RegistryUnavailable,
    RepoFile,
    ResolvedModel,
)
from llmops_shared.logging import get_logger

T = TypeVar("T")

MAX_RETRY_WAIT_S: Final = 30.0

_log = get_logger(__name__)


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
        self._cache = OfflineCache(cache_dir, store)
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
            return await asyncio.to_thread(self._cache.resolve, repo_id, revision, self.model_url)
        info = await self._model_info(repo_id, revision, files_metadata=True)
        sha = info.sha
        if not sha or not COMMIT_RE.match(sha):
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
            config=read_config(Path(config_path), f"{CONFIG_FILE} of {repo_id} at {sha}"),
            files=files,
            license=license_of(info),
            gated=bool(info.gated),
            private=bool(info.private),
            last_modified=info.last_modified,
        )
        if self._cache.save_manifest(resolved):  # a ref without the manifest would mislead offline
            self._cache.remember_ref(repo_id, revision or DEFAULT_BRANCH, sha)
        return resolved

    async def download(self, model: ResolvedModel, progress: ProgressCallback) -> str:
        _check_repo_id(model.repo_id)
        log = _log.bind(repo_id=model.repo_id, sha=model.revision)
        listing = [(f.path, f.size) for f in model.files]
        existing = self.store.existing(model.repo_id, model.revision)
        if existing is not None:
            try:
                stale = await asyncio.to_thread(self.store.missing, existing, listing)
            except ValueError as exc:  # an unsafe path in the listing
                raise InvalidModel(f"repository {model.repo_id}: {exc}") from None
            if not stale:
                log.info("snapshot_reused")
                return self.store.uri(existing)
            log.warning(
                "snapshot_incomplete", missing=len(stale), note="downloaded again and replaced"
            )
        if self.offline:
            self._cache.check_cached(model)
        counter = DownloadProgress(progress, len(model.files), model.total_bytes)
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
                    source = self._cache.cached_file(model.repo_id, model.revision, repo_file.path)
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
        log.info("snapshot_downloaded", files=len(model.files), bytes=model.total_bytes)
        return self.store.uri(final)

    async def current_revision(self, repo_id: str, revision: str | None) -> str:
        _check_repo_id(repo_id)
        if self.offline:
            raise OfflineMode(
                "offline mode (HF_HUB_OFFLINE=true): the Hub is not contacted, so upstream is "
                "unknown"
            )
        info = await self._model_info(repo_id, revision, expand=["sha"])
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
        bars: list[ByteCounter] = []

        def bar(**_: object) -> ByteCounter:
            # only the first bar counts: a Xet download opens a second one for network bytes
            counter = ByteCounter(None if bars else on_bytes)
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

    async def _model_info(self, repo_id: str, revision: str | None, **options: Any) -> ModelInfo:
        """``HfApi.model_info`` with ``options``, through :meth:`_call`."""
        call = partial(
            self._api.model_info, repo_id, revision=revision, timeout=self._timeout_s, **options
        )
        return await self._call(repo_id, revision, "model info", call)

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
                error=scrub(short(state.outcome.exception()), self._token),
            )

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self._wait_s, max=MAX_RETRY_WAIT_S),
                retry=retry_if_exception(transient),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return await asyncio.to_thread(call)
        except Exception as exc:  # noqa: BLE001 - translated; unknown ones are re-raised as is
            raise translate(
                exc,
                repo_id,
                revision,
                what,
                attempts,
                endpoint=self.endpoint,
                token=self._token,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises


def _check_repo_id(repo_id: str) -> None:
    """:class:`InvalidModel` for an id that is not a Hub id (see :func:`check_repo_id`)."""
    try:
        check_repo_id(repo_id)
    except InvalidRepoId as exc:
        raise InvalidModel(str(exc)) from None
