"""TEST DOUBLE: a tiny HTTP server answering MLflow's ``GET /api/2.0/mlflow/runs/get``.

Only for the gateway's metrics adapter: it returns the real response shape of MLflow 2.x/3.x
(``{"run": {"info": ..., "data": {"metrics": [...], "params": [...], "tags": [...]}}}``) and
MLflow's 404 body for an unknown run. The real MLflow server is exercised by the e2e tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def run_body(run_id: str, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "run": {
            "info": {
                "run_id": run_id,
                "run_uuid": run_id,
                "experiment_id": "7",
                "run_name": "train-job",
                "user_id": "tracking",
                "status": "RUNNING",
                "start_time": 1_700_000_000_000,
                "artifact_uri": f"mlflow-artifacts:/7/{run_id}/artifacts",
                "lifecycle_stage": "active",
            },
            "data": {
                "metrics": [
                    {"key": key, "value": value, "timestamp": 1_700_000_060_000, "step": 10}
                    for key, value in metrics.items()
                ],
                "params": [{"key": "method", "value": "lora"}],
                "tags": [{"key": "mlflow.runName", "value": "train-job"}],
            },
            "inputs": {},
        }
    }


@contextmanager
def mlflow_runs_server(runs: dict[str, dict[str, float]]) -> Iterator[str]:
    """Serve ``runs`` (run id -> latest metrics); yields the tracking URI."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            run_id = parse_qs(url.query).get("run_id", [""])[0]
            if url.path != "/api/2.0/mlflow/runs/get":
                self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "not found"})
            elif run_id not in runs:
                message = f"Run with id={run_id} not found"
                self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message})
            else:
                self._reply(200, run_body(run_id, runs[run_id]))

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
