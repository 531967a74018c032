"""MLflow's model registry (``MlflowClient``): every model version, page by page, and the
experiment of a run. Blocking client calls run in a thread.

Errors: MLflow's answers with a permanent 4xx code (``RESOURCE_DOES_NOT_EXIST``,
``INVALID_PARAMETER_VALUE``...) about a run raise :class:`RunNotFound` (the handler reports
Failed, ``/poll`` skips the version); transport errors, 5xx, ``401``/``403`` (credentials: a
misconfiguration must not fail every version) and ``429`` raise ``DependencyUnavailableError``.
Every message is redacted: MLflow's exception text holds the raw tracking URI, credentials
included (``http://user:secret@host``); it is replaced by ``http://user:***@host``.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote, urlsplit

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import JsonValue

from llmops_github_sync.ports import DependencyUnavailableError, ModelVersionRecord, RunNotFound
from llmops_github_sync.values_facts import created_date
from llmops_shared.streams.connection import redact_url

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@]+)@")
_TRANSIENT_STATUSES = frozenset({401, 403, 408, 429})


class MlflowRegistry:
    """Model versions of one MLflow tracking server."""

    def __init__(self, tracking_uri: str, *, page_size: int = 200, timeout_s: float = 5.0) -> None:
        self.tracking_uri = tracking_uri
        self.page_size = page_size
        self.timeout_s = timeout_s
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def describe(self) -> dict[str, JsonValue]:
        return {"tracking_uri": redact_url(self.tracking_uri)}

    async def list_versions(self) -> list[ModelVersionRecord]:
        return await asyncio.to_thread(self._list_versions)

    def _list_versions(self) -> list[ModelVersionRecord]:
        records: list[ModelVersionRecord] = []
        token: str | None = None
        experiments: dict[str, str] = {}
        gone: dict[str, str] = {}
        try:
            while True:
                page = self._client.search_model_versions(
                    max_results=self.page_size, page_token=token
                )
                for mv in page:
                    run_id = mv.run_id or None
                    experiment = missing = None
                    if run_id:
                        if run_id not in experiments and run_id not in gone:
                            try:
                                experiments[run_id] = str(
                                    self._client.get_run(run_id).info.experiment_id
                                )
                            except MlflowException as exc:
                                if not _permanent(exc):
                                    raise
                                gone[run_id] = self._message(exc)
                        experiment = experiments.get(run_id)
                        missing = gone.get(run_id)
                    records.append(
                        ModelVersionRecord(
                            model_name=mv.name,
                            version=str(mv.version),
                            run_id=run_id,
                            experiment_id=experiment,
                            created_at=created_date(mv.creation_timestamp),
                            tags=dict(mv.tags or {}),
                            run_missing=missing,
                        )
                    )
                token = page.token
                if not token:
                    return records
        except (MlflowException, requests.RequestException) as exc:
            raise DependencyUnavailableError(f"MLflow: {self._message(exc)}") from None

    async def experiment_of(self, run_id: str) -> str:
        def lookup() -> str:
            try:
                return str(self._client.get_run(run_id).info.experiment_id)
            except MlflowException as exc:
                if _permanent(exc):
                    raise RunNotFound(
                        f"MLflow cannot give run {run_id} ({exc.error_code}): {self._message(exc)}"
                    ) from None
                raise DependencyUnavailableError(f"MLflow: {self._message(exc)}") from None
            except requests.RequestException as exc:
                raise DependencyUnavailableError(f"MLflow: {self._message(exc)}") from None

        return await asyncio.to_thread(lookup)

    async def ping(self) -> None:
        def check() -> None:
            try:
                if self.tracking_uri.startswith(("http://", "https://")):
                    response = requests.get(
                        f"{self.tracking_uri.rstrip('/')}/health", timeout=self.timeout_s
                    )
                    response.raise_for_status()
                else:
                    self._client.search_experiments(max_results=1)
            except Exception as exc:  # noqa: BLE001 - re-raised, redacted
                raise DependencyUnavailableError(
                    f"MLflow: {type(exc).__name__}: {self._message(exc)}"
                ) from None

        await asyncio.to_thread(check)

    def _message(self, exc: BaseException) -> str:
        """``exc``'s text on one line, short, without the tracking URI's credentials."""
        return redact(" ".join(str(exc).split()), self.tracking_uri)[:300]


def redact(text: str, uri: str | None = None) -> str:
    """``text`` with ``uri`` (raw or with its userinfo) and any ``scheme://user:pass@`` redacted."""
    if uri:
        text = text.replace(uri, redact_url(uri))
        password = urlsplit(uri).password
        if password:
            for secret in {password, unquote(password)}:
                if len(secret) >= 3:
                    text = text.replace(secret, "***")
    return _USERINFO.sub(_redact_userinfo, text)


def _redact_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    # a userinfo without a password is often a token: hide it whole
    return f"{match.group('scheme')}{user}:***@" if colon else f"{match.group('scheme')}***@"


def _permanent(exc: MlflowException) -> bool:
    """A 4xx error code about the request itself (not found, invalid), not credentials or a
    rate limit: asking again gives the same answer."""
    try:
        status = int(exc.get_http_status_code())  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):
        return False
    return 400 <= status < 500 and status not in _TRANSIENT_STATUSES
