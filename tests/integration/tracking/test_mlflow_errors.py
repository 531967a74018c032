"""How MLflow's HTTP failures are classified, against a wire-level stand-in for a sick server.

The real client talks to a tiny HTTP server (a test double, not MLflow) that answers chosen
status codes, because a real MLflow server cannot be made to return 5xx or 429 on demand.
The health check the classification relies on is ``experiments/search``; every other API call
gets the configured failure.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops_shared.streams import DependencyUnavailableError, is_retryable
from llmops_tracking.adapters.mlflow import MlflowTracking, mlflow_client
from llmops_tracking.adapters.mlflow_errors import MlflowServerError
from llmops_tracking.handlers import handle_training_event
from llmops_tracking.ports import TrackingPorts, TrackingRejected, TrackingUnavailable

from integration.tracking.helpers import received, submitted
from support.fakes.tracking import FakeRunLocks

pytestmark = pytest.mark.integration


class SickMlflow(ThreadingHTTPServer):
    """Answers ``failure`` (status, JSON body or text) to every call; search too if ``down``."""

    def __init__(self, status: int, body: str, *, search_fails: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.body = body
        self.search_fails = search_fails

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: SickMlflow

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if "/experiments/search" in self.path and not self.server.search_fails:
            self._send(200, json.dumps({"experiments": []}))
        else:
            self._send(self.server.status, self.server.body)

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reports what matters."""


def error_body(code: str, message: str = "boom") -> str:
    return json.dumps({"error_code": code, "message": message})


@pytest.fixture
def sick() -> Iterator[list[SickMlflow]]:
    """Servers started by a test, shut down after it."""
    servers: list[SickMlflow] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def ports_for(
    servers: list[SickMlflow], status: int, body: str, *, search_fails: bool
) -> TrackingPorts:
    server = SickMlflow(status, body, search_fails=search_fails)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    backend = MlflowTracking(mlflow_client(server.url, max_retries=0, timeout_s=5))
    return TrackingPorts(
        backend=backend,
        locks=FakeRunLocks(),
        environment="dev",
        experiment_name_template="x/{job_type}",
    )


@pytest.mark.parametrize(
    ("status", "body", "search_fails"),
    [
        pytest.param(500, error_body("INTERNAL_ERROR"), True, id="5xx-and-health-fails"),
        pytest.param(503, "<html>Service Unavailable</html>", False, id="proxy-503"),
        pytest.param(429, error_body("REQUEST_LIMIT_EXCEEDED"), False, id="rate-limited"),
        pytest.param(401, error_body("UNAUTHENTICATED"), False, id="bad-credentials"),
        pytest.param(404, "<html>Not Found</html>", False, id="not-mlflow"),
    ],
)
async def test_outages_and_misconfiguration_make_the_event_wait(
    sick: list[SickMlflow], status: int, body: str, search_fails: bool
) -> None:
    ports = ports_for(sick, status, body, search_fails=search_fails)

    with pytest.raises(TrackingUnavailable) as caught:
        await handle_training_event(received(submitted()), ports)

    assert isinstance(caught.value, DependencyUnavailableError)


async def test_a_5xx_while_mlflow_otherwise_answers_is_retried_but_counted(
    sick: list[SickMlflow],
) -> None:
    ports = ports_for(sick, 500, error_body("INTERNAL_ERROR", "db exploded"), search_fails=False)

    with pytest.raises(MlflowServerError, match="MLflow failed while tracking job") as caught:
        await handle_training_event(received(submitted()), ports)

    assert is_retryable(caught.value)
    assert not isinstance(caught.value, DependencyUnavailableError)


async def test_a_4xx_is_rejected_with_mlflows_message(sick: list[SickMlflow]) -> None:
    body = error_body("INVALID_PARAMETER_VALUE", "experiment name is invalid")
    ports = ports_for(sick, 400, body, search_fails=False)

    with pytest.raises(TrackingRejected, match="experiment name is invalid") as caught:
        await handle_training_event(received(submitted()), ports)

    assert not is_retryable(caught.value)
