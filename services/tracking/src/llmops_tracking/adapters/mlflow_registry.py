"""MLflow's model registry for the model-version events: read versions, register the webhook.

Like :mod:`llmops_tracking.adapters.mlflow`, a module that imports mlflow; the receiver and the
poller see only :class:`~llmops_tracking.model_versions.ModelRegistry` and plain records.

Searching: MLflow's ``search_model_versions`` cannot *filter* on ``creation_timestamp`` (only
name, run_id, source_path, version_number and tags), but it can *order* by it on a SQL store.
So :meth:`MlflowModelRegistry.versions_since` reads newest first and stops at the first page
that reaches below the watermark: a pass costs one or two requests, not a scan of the registry.
Offset paging while versions are being created only repeats entries (they are de-duplicated).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypeVar

import requests
from mlflow.entities.model_registry import ModelVersion
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from llmops_shared.logging import get_logger
from llmops_shared.streams.connection import redact_url
from llmops_tracking.adapters.mlflow_errors import is_transient, scrub
from llmops_tracking.model_versions import (
    ModelVersionRecord,
    RegistryUnavailable,
    VersionUnreadable,
)

T = TypeVar("T")

WEBHOOK_EVENTS: Final = (
    "model_version.created",
    "model_version_alias.created",
    "model_version_tag.set",
)
"""What the receiver handles; the registered webhook subscribes to exactly these."""

_NOT_FOUND: Final = "RESOURCE_DOES_NOT_EXIST"
_RUN_CACHE_SIZE: Final = 1024

WebhookOutcome = Literal["created", "updated", "secret_refreshed"]

_log = get_logger(__name__)


class _Unreadable(Exception):
    """MLflow refused to read this one version (not a failure of MLflow as a whole)."""

    def __init__(self, cause: MlflowException) -> None:
        super().__init__(cause.message)
        self.cause = cause


class MlflowModelRegistry:
    """A :class:`~llmops_tracking.model_versions.ModelRegistry` over an ``MlflowClient``."""

    def __init__(self, client: MlflowClient, *, page_size: int = 1000) -> None:
        self._client = client
        self._raw_uri = str(client.tracking_uri)
        self._uri = redact_url(self._raw_uri)
        self._page_size = page_size
        self._experiments: OrderedDict[str, str | None] = OrderedDict()  # run id -> experiment

    # ------------------------------------------------------------------ ModelRegistry

    async def get_version(self, name: str, version: str) -> ModelVersionRecord | None:
        return await self._call(f"reading model version {name}/{version}", self._get, name, version)

    async def versions_since(self, min_timestamp: int | None) -> list[ModelVersionRecord]:
        return await self._call("searching model versions", self._since, min_timestamp)

    async def newest_timestamp(self) -> int | None:
        return await self._call("searching model versions", self._newest)

    async def ensure_webhook(
        self, *, name: str, url: str, secret: str, events: Sequence[str] = WEBHOOK_EVENTS
    ) -> WebhookOutcome:
        """Create the webhook ``name``, or bring an existing one to ``url``/``events``/active.

        MLflow never returns a stored secret, so an existing webhook is always sent ours: a
        rotated ``MLFLOW_WEBHOOK_SECRET`` takes effect on the next start.
        """
        return await self._call(
            f"registering webhook {name}", self._ensure_webhook, name, url, secret, tuple(events)
        )

    # ------------------------------------------------------------------ blocking parts

    def _get(self, name: str, version: str) -> ModelVersionRecord | None:
        try:
            found = self._client.get_model_version(name, version)
        except MlflowException as exc:
            if exc.error_code == _NOT_FOUND:
                return None
            if not is_transient(exc):
                raise _Unreadable(exc) from exc
            raise
        return self._record(found, self._experiment_of(found.run_id))

    def _since(self, min_timestamp: int | None) -> list[ModelVersionRecord]:
        seen: dict[str, ModelVersionRecord] = {}
        token: str | None = None
        while True:
            page = self._client.search_model_versions(
                max_results=self._page_size,
                order_by=["creation_timestamp DESC"],
                page_token=token,
            )
            reached_older = False
            for found in page:
                created = int(found.creation_timestamp or 0)
                if min_timestamp is not None and created < min_timestamp:
                    reached_older = True
                    continue
                record = self._record(found, None)
                seen.setdefault(record.id, record)
            token = page.token
            if reached_older or not token:
                return sorted(seen.values(), key=lambda r: r.creation_timestamp, reverse=True)

    def _newest(self) -> int | None:
        page = self._client.search_model_versions(
            max_results=1, order_by=["creation_timestamp DESC"]
        )
        return int(page[0].creation_timestamp or 0) if page else None

    def _experiment_of(self, run_id: str | None) -> str | None:
        """The run's experiment (cached: a run's experiment never changes)."""
        if not run_id:
            return None
        if run_id in self._experiments:
            self._experiments.move_to_end(run_id)
            return self._experiments[run_id]
        try:
            experiment: str | None = self._client.get_run(run_id).info.experiment_id
        except MlflowException as exc:
            if exc.error_code != _NOT_FOUND:
                if is_transient(exc):
                    raise
                # refused for this run only (e.g. PERMISSION_DENIED): the version is published
                # without its experiment rather than holding up every other version
                _log.warning(
                    "mlflow_run_unreadable",
                    run_id=run_id,
                    error=self._message(exc),
                    note="published without experiment_id",
                )
                return None  # not cached: the next read may be allowed
            experiment = None  # the run was deleted for good: the version still exists
        self._experiments[run_id] = experiment
        if len(self._experiments) > _RUN_CACHE_SIZE:
            self._experiments.popitem(last=False)
        return experiment

    def _ensure_webhook(
        self, name: str, url: str, secret: str, events: tuple[str, ...]
    ) -> WebhookOutcome:
        wanted = {WebhookEvent.from_str(e) for e in events}  # type: ignore[arg-type]
        token: str | None = None
        while True:
            page = self._client.list_webhooks(max_results=100, page_token=token)
            for hook in page:
                if hook.name != name:
                    continue
                same = (
                    hook.url == url
                    and set(hook.events) == wanted
                    and hook.status == WebhookStatus.ACTIVE
                )
                self._client.update_webhook(
                    hook.webhook_id,
                    url=url,
                    events=sorted(wanted, key=str),
                    secret=secret,
                    status=WebhookStatus.ACTIVE,
                )
                return "secret_refreshed" if same else "updated"
            token = page.token
            if not token:
                break
        self._client.create_webhook(
            name=name,
            url=url,
            events=sorted(wanted, key=str),
            description="llmops tracking: model versions -> llmops.models",
            secret=secret,
        )
        return "created"

    @staticmethod
    def _record(found: ModelVersion, experiment_id: str | None) -> ModelVersionRecord:
        return ModelVersionRecord(
            name=found.name,
            version=str(found.version),
            source=found.source or "",
            creation_timestamp=int(found.creation_timestamp or 0),
            run_id=found.run_id or None,
            experiment_id=experiment_id,
            aliases=tuple(found.aliases or ()),
            tags=dict(found.tags or {}),
        )

    # ------------------------------------------------------------------ errors

    async def _call(self, action: str, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in a thread; any MLflow or transport failure -> RegistryUnavailable
        (:class:`VersionUnreadable` when MLflow refused to read one version)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except _Unreadable as exc:
            raise VersionUnreadable(
                f"MLflow at {self._uri} refused {action}: {self._message(exc.cause)}"
            ) from exc.cause
        except (MlflowException, requests.RequestException, Urllib3HTTPError, OSError) as exc:
            raise RegistryUnavailable(
                f"MLflow at {self._uri} failed while {action}: {self._message(exc)}"
            ) from exc

    def _message(self, exc: BaseException) -> str:
        """MLflow's text without credentials: it quotes the raw tracking URI it called."""
        text = exc.message if isinstance(exc, MlflowException) else str(exc)
        return " ".join(scrub(str(text), self._raw_uri).split())[:500]
