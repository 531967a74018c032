"""A small client of the gateway's REST API, for the CLI, the benchmarks and scripts.

It speaks only HTTP (httpx); nothing here knows the gateway's internals.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

API_PREFIX = "/llm-ops/v1"


class GatewayError(Exception):
    """The gateway refused a request; ``detail`` is its JSON error body."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail

    def messages(self) -> list[str]:
        """One line per error, ``loc: msg`` for validation errors."""
        if isinstance(self.detail, list):
            lines = []
            for error in self.detail:
                if isinstance(error, dict):
                    loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
                    lines.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
                else:
                    lines.append(str(error))
            return lines
        return [str(self.detail)]


class GatewayClient:
    """Blocking client; use as a context manager to close the connection pool."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 10.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def add_model(self, model: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/catalog/models", json=model)

    def import_model(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start an import from a registry (``registryType``, ``registryModelId``...)."""
        return self._json("POST", "/catalog/models/import", json=body)

    def model(self, model_id: str) -> dict[str, Any]:
        return self._json("GET", f"/catalog/models/{model_id}")

    def registry_links(self, model_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._json(
            "GET", f"/catalog/models/{model_id}/registry-links"
        )["items"]
        return items

    def check_model_updates(self, model_id: str) -> dict[str, Any]:
        return self._json("POST", f"/catalog/models/{model_id}/check-updates")

    def create_dataset(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/catalog/datasets", json=body)

    def datasets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._json("GET", "/catalog/datasets")["items"]
        return items

    def create_dataset_version(
        self, dataset_id: str, version_tag: str, *, storage_uri: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"versionTag": version_tag}
        if storage_uri is not None:
            body["storageUri"] = storage_uri
        return self._json("POST", f"/catalog/datasets/{dataset_id}/versions", json=body)

    def dataset_versions(self, dataset_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._json("GET", f"/catalog/datasets/{dataset_id}/versions")[
            "items"
        ]
        return items

    def dataset_version(self, dataset_id: str, version_id: str) -> dict[str, Any]:
        return self._json("GET", f"/catalog/datasets/{dataset_id}/versions/{version_id}")

    def dataset_diff(
        self, dataset_id: str, version_id: str, base_version_id: str | None = None
    ) -> dict[str, Any]:
        params = {"baseVersionId": base_version_id} if base_version_id else None
        path = f"/catalog/datasets/{dataset_id}/versions/{version_id}/diff"
        return self._json("GET", path, params=params)

    def restore_dataset_version(
        self, dataset_id: str, version_id: str, target_uri: str
    ) -> dict[str, Any]:
        path = f"/catalog/datasets/{dataset_id}/versions/{version_id}/restore"
        return self._json("POST", path, json={"targetUri": target_uri})

    def get(self, path: str) -> dict[str, Any]:
        """GET any gateway path under the API prefix (e.g. a ``statusUrl`` from a reply)."""
        return self._json("GET", path.removeprefix(API_PREFIX))

    def submit_training_job(
        self, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/training/jobs", json=body, headers=headers)

    def training_job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/training/jobs/{job_id}")

    def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/training/jobs/{job_id}/cancel")

    def experiment_run(self, job_id: str) -> dict[str, Any] | None:
        """The job's experiment run, or None while tracking has not reported one."""
        return self._optional(f"/training/jobs/{job_id}/experiment-run")

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/serving/endpoints", json=body)

    def endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        """The endpoint, or None once it is gone (deleted)."""
        return self._optional(f"/serving/endpoints/{endpoint_id}")

    def deployment(self, endpoint_id: str) -> dict[str, Any] | None:
        """What the serving worker last reported, or None before its first report."""
        return self._optional(f"/serving/endpoints/{endpoint_id}/deployment")

    def promote_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return self._json("POST", f"/serving/endpoints/{endpoint_id}/promote")

    def rollback_endpoint(self, endpoint_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else None
        return self._json("POST", f"/serving/endpoints/{endpoint_id}/rollback", json=body)

    def delete_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/serving/endpoints/{endpoint_id}")

    def integration_configs(self, environment: str | None = None) -> list[dict[str, Any]]:
        params = {"environment": environment} if environment else {}
        items: list[dict[str, Any]] = self._json("GET", "/integrations/configs", params=params)[
            "items"
        ]
        return items

    def set_integration_config(
        self, environment: str, area: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return self._json("PUT", f"/integrations/configs/{environment}/{area}", json=body)

    def integrations_health(self) -> dict[str, Any]:
        """``/health/integrations``; its 503 (Redis down) still carries the report.

        Raises :class:`GatewayError` when there is no report: any other error status, an answer
        that is not the report's JSON (a proxy's HTML page), or no answer at all (status code 0:
        connection refused, timed out)."""
        try:
            response = self._http.get(API_PREFIX + "/health/integrations")
        except httpx.HTTPError as exc:
            raise GatewayError(
                0, f"no answer from {self._http.base_url}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        is_report = isinstance(body, dict) and "integrations" in body
        if response.status_code in (200, 503) and is_report:
            report: dict[str, Any] = body
            return report
        detail = body.get("detail", body) if isinstance(body, dict) else None
        if detail is None:
            text = response.text.strip()[:300]
            detail = f"not a health report: {text}" if text else "not a health report (empty)"
        raise GatewayError(response.status_code, detail)

    def create_key(
        self, name: str, roles: dict[str, str], *, expires_at: str | None = None
    ) -> dict[str, Any]:
        """Make a stored API key; the answer's ``key`` is the only time the gateway shows it.

        ``roles`` maps an environment (or ``*``) to a role; ``expires_at`` is ISO 8601 with an
        offset (the gateway refuses naive times), None for a key that never expires."""
        body: dict[str, Any] = {"name": name, "roles": roles}
        if expires_at is not None:
            body["expiresAt"] = expires_at
        return self._json("POST", "/keys", json=body)

    def keys(self) -> list[dict[str, Any]]:
        """Every stored key, newest first, revoked ones too (never the keys themselves)."""
        items: list[dict[str, Any]] = self._json("GET", "/keys")["items"]
        return items

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke by id (not name: names are the CLI's convenience); the key's record."""
        return self._json("DELETE", f"/keys/{quote(key_id, safe='')}")

    def audit(self, **filters: str | int | None) -> dict[str, Any]:
        """A page of the audit log, newest first: ``{items, limit, offset}``. ``filters`` are
        the query parameters as the API spells them (``entityKind``...); None ones are left
        out so that the gateway applies its defaults."""
        params = {name: value for name, value in filters.items() if value is not None}
        return self._json("GET", "/audit", params=params)

    def lineage(
        self, kind: str, entity_id: str, *, direction: str = "both", depth: int = 10
    ) -> dict[str, Any]:
        """The graph around one entity: ``{root, nodes, edges}`` (edges point downstream)."""
        path = f"/lineage/{quote(kind, safe='')}/{quote(entity_id, safe='/')}"
        return self._json("GET", path, params={"direction": direction, "depth": depth})

    def _optional(self, path: str) -> dict[str, Any] | None:
        try:
            return self._json("GET", path)
        except GatewayError as exc:
            if exc.status_code == 404:
                return None
            raise

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, API_PREFIX + path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise GatewayError(response.status_code, detail)
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
