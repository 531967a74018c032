"""Live run metrics from MLflow's REST API (``GET /api/2.0/mlflow/runs/get``).

The gateway only reads, so it needs no ``mlflow`` package: one HTTP call with a short timeout.
MLflow being slow or down must never fail the gateway's request; callers get
:class:`MetricsUnavailableError` with a one-line reason and answer without metrics.
"""

from __future__ import annotations

from typing import Any

import httpx

from llmops_gateway.domain.errors import MetricsUnavailableError

__all__ = ["MetricsUnavailableError", "MlflowMetrics"]


class MlflowMetrics:
    """Reads the latest value of every metric of a run (the use cases' ``MetricsReader``)."""

    def __init__(self, client: httpx.AsyncClient, tracking_uri: str) -> None:
        self._client = client
        self._url = tracking_uri.rstrip("/") + "/api/2.0/mlflow/runs/get"

    async def latest_metrics(self, run_id: str) -> dict[str, float]:
        """``{key: value}`` of the run's metrics (``runs/get`` returns the latest per key)."""
        try:
            response = await self._client.get(self._url, params={"run_id": run_id})
        except httpx.HTTPError as exc:
            raise MetricsUnavailableError(
                f"MLflow unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code != httpx.codes.OK:
            raise MetricsUnavailableError(
                f"MLflow answered {response.status_code}: {response.text[:200]}"
            )
        try:
            body: Any = response.json()
            metrics = body["run"]["data"].get("metrics", [])
            return {str(m["key"]): float(m["value"]) for m in metrics}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MetricsUnavailableError(
                f"unexpected MLflow runs/get body: {type(exc).__name__}: {exc}"
            ) from exc
