"""deploy/docker: one multi-stage Dockerfile for every service (only that service's dependencies,
from the lock), a non-root runtime with a HEALTHCHECK; and the health check script it runs."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from deploy.helpers import (
    DEPLOY,
    DOCKERFILE,
    ROOT,
    SERVICES,
    Stage,
    copied_before,
    default_port,
    load_module,
    parse_dockerfile,
    workspace_manifests,
)

pytestmark = pytest.mark.unit

HEALTHCHECK_SCRIPT = DEPLOY / "docker" / "healthcheck.py"


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE)


def test_multi_stage_build_of_one_service_from_the_lock(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, stages = dockerfile
    assert [s.name for s in stages] == ["builder", "runtime"]
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-")  # requires-python
    builder, runtime = stages
    assert builder.base == runtime.base == "${PYTHON_IMAGE}"
    syncs = [r for r in builder.all("RUN") if "uv sync" in r]
    assert len(syncs) == 2  # third-party dependencies first (cached layer), then the workspace
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync
        assert '--package "llmops-${SERVICE}"' in sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]
    # every workspace member's manifest (the lock's: the trainer's too) is copied before the
    # first sync, so uv sees the workspace the lock was made from
    assert set(workspace_manifests().values()) <= copied_before(builder, syncs[0])
    assert {p.name for p in (ROOT / "services").iterdir() if p.is_dir()} == set(SERVICES)


def test_the_service_argument_is_checked_against_the_workspace(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    builder = dockerfile[1][0]
    [check] = [r for r in builder.all("RUN") if r.startswith("case")]
    listed = re.search(r"in\s+(\S+)\)", check)
    assert listed is not None
    assert set(listed[1].split("|")) == set(SERVICES)
    [launcher] = [r for r in builder.all("RUN") if "llmops-service" in r]
    assert "python -m %s" in launcher
    assert "tr - _" in launcher


def test_the_runtime_is_non_root_and_health_checked(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    runtime = dockerfile[1][-1]
    [user] = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid not in {"0", "root"}
    assert int(uid) >= 1000
    assert any(f"--uid {uid}" in r for r in runtime.all("RUN"))  # the user exists
    [healthcheck] = runtime.all("HEALTHCHECK")
    assert healthcheck.endswith('CMD ["python", "/app/healthcheck.py"]')
    assert "COPY deploy/docker/healthcheck.py /app/healthcheck.py" in [
        f"COPY {c}" for c in runtime.all("COPY")
    ]
    env = " ".join(runtime.all("ENV"))
    for setting in ("HEALTH_HOST=0.0.0.0", "HOST=0.0.0.0", "LLMOPS_SERVICE=${SERVICE}"):
        assert setting in env
    assert runtime.all("ENTRYPOINT") == ['["/app/bin/llmops-service"]']
    # the runtime gets the virtualenv from the builder, never the build tools
    assert not any("uv" in r.split() for r in runtime.all("RUN"))
    assert any(c.startswith("--from=builder /app/.venv") for c in runtime.all("COPY"))


def test_the_build_context_holds_only_the_workspace() -> None:
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**")] == "**"  # everything out, then what the build needs back
    for needed in ("!uv.lock", "!pyproject.toml", "!services/*/src/**", "!shared/src/**"):
        assert needed in ignore
    # the trainer is a workspace member: its manifest goes in, never its sources
    assert "!trainer/pyproject.toml" in ignore
    assert not [line for line in ignore if line.startswith("!trainer/src")]


def test_healthcheck_ports_are_the_services_defaults() -> None:
    script = load_module(HEALTHCHECK_SCRIPT, "llmops_deploy_healthcheck")
    assert {s: default_port(s) for s in SERVICES} == script.DEFAULT_PORTS
    assert script.health_url({"LLMOPS_SERVICE": "gateway", "PORT": "9000"}) == (
        "http://127.0.0.1:9000/healthz"
    )
    assert script.health_url({"LLMOPS_SERVICE": "github-sync"}, "/readyz") == (
        "http://127.0.0.1:8086/readyz"
    )


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run(env: dict[str, str], *args: str) -> int:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


def test_the_healthcheck_exits_by_the_answer(health_server: int) -> None:
    port = str(health_server)
    assert _run({"LLMOPS_SERVICE": "registry", "HEALTH_PORT": port}) == 0
    assert _run({"LLMOPS_SERVICE": "gateway", "PORT": port}) == 0
    assert _run({"LLMOPS_SERVICE": "registry", "HEALTH_PORT": port}, "/readyz") == 1  # 503
    assert _run({"LLMOPS_SERVICE": "registry", "HEALTH_PORT": "1"}) == 1  # nothing listens
    assert _run({"LLMOPS_SERVICE": "nope"}) != 0
