"""MLflow's model registry (``MlflowClient``): every model version, page by page, and the
experiment of a run. Blocking client calls run in a thread."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import JsonValue

from llmops_github_sync.ports import DependencyUnavailableError, ModelVersionRecord
from llmops_github_sync.values import created_date


class MlflowRegistry:
    """Model versions of one MLflow tracking server."""

    def __init__(self, tracking_uri: str, *, page_size: int = 200, timeout_s: float = 5.0) -> None:
        self.tracking_uri = tracking_uri
        self.page_size = page_size
        self.timeout_s = timeout_s
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def describe(self) -> dict[str, JsonValue]:
        return {"tracking_uri": _redact(self.tracking_uri)}

    async def list_versions(self) -> list[ModelVersionRecord]:
        return await asyncio.to_thread(self._list_versions)

    def _list_versions(self) -> list[ModelVersionRecord]:
        records: list[ModelVersionRecord] = []
        token: str | None = None
        experiments: dict[str, str] = {}
        try:
            while True:
                page = self._client.search_model_versions(
                    max_results=self.page_size, page_token=token
                )
                for mv in page:
                    run_id = mv.run_id or None
                    experiment = None
                    if run_id:
                        if run_id not in experiments:
                            experiments[run_id] = self._client.get_run(run_id).info.experiment_id
                        experiment = experiments[run_id]
                    records.append(
                        ModelVersionRecord(
                            model_name=mv.name,
                            version=str(mv.version),
                            run_id=run_id,
                            experiment_id=experiment,
                            created_at=created_date(mv.creation_timestamp),
                            tags=dict(mv.tags or {}),
                        )
                    )
                token = page.token
                if not token:
                    return records
        except (MlflowException, requests.RequestException) as exc:
            raise DependencyUnavailableError(f"MLflow: {_short(exc)}") from None

    async def experiment_of(self, run_id: str) -> str:
        def lookup() -> str:
            try:
                return str(self._client.get_run(run_id).info.experiment_id)
            except (MlflowException, requests.RequestException) as exc:
                raise DependencyUnavailableError(f"MLflow: {_short(exc)}") from None

        return await asyncio.to_thread(lookup)

    async def ping(self) -> None:
        def check() -> None:
            if self.tracking_uri.startswith(("http://", "https://")):
                response = requests.get(
                    f"{self.tracking_uri.rstrip('/')}/health", timeout=self.timeout_s
                )
                response.raise_for_status()
            else:
                self._client.search_experiments(max_results=1)

        await asyncio.to_thread(check)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password or parts.username:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, ""))
    return uri
