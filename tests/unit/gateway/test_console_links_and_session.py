"""The console's small rules: where a link may point, where sign-in may send a person back to,
and which forms count as coming from the console itself."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from llmops_gateway.config import GatewaySettings
from llmops_gateway.console.links import argo_workflow, git_commit, tool_links, web_url
from llmops_gateway.console.session import CrossSiteRequest, safe_next, same_origin
from llmops_gateway.domain.lineage import Node

pytestmark = pytest.mark.unit


def settings(**values: str) -> GatewaySettings:
    return GatewaySettings(_env_file=None, api_keys=["k"], **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("https://mlflow.example/#/experiments/1/runs/2", True),
        ("http://127.0.0.1:5000/x", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("/console/jobs", False),  # a tool's link is absolute
        ("", False),
        (None, False),
    ],
)
def test_only_absolute_http_links_are_shown(value: str | None, shown: bool) -> None:
    assert (web_url(value) is not None) is shown


def test_the_tools_web_addresses_come_from_settings() -> None:
    configured = settings(
        console_argo_url="https://argo.example/",
        console_git_commit_url="https://git.example/acme/deploy/commit/{sha}",
    )
    assert argo_workflow(configured, "llm-ops", "train-1") == (
        "https://argo.example/workflows/llm-ops/train-1"
    )
    assert git_commit(configured, "abc123") == "https://git.example/acme/deploy/commit/abc123"
    assert argo_workflow(settings(), "llm-ops", "train-1") is None  # not configured: no link
    commit = Node("values-commit", "abc123", "abc123 values.yaml", "Synced")
    pipeline = Node("pipeline", "train-1", "train-1", "Running", None, {"workflow": "ns/train-1"})
    run = Node("experiment-run", "r1", "r1", None, None, {"mlflow": "javascript:alert(1)"})
    assert tool_links(configured, commit) == {
        "Git": "https://git.example/acme/deploy/commit/abc123"
    }
    assert tool_links(configured, pipeline) == {"Argo": "https://argo.example/workflows/ns/train-1"}
    assert tool_links(configured, run) == {}


@pytest.mark.parametrize(
    ("target", "result"),
    [
        ("/console/jobs?status=Failed", "/console/jobs?status=Failed"),
        ("/console/endpoints/e1", "/console/endpoints/e1"),
        ("https://evil.example/console/x", "/console/jobs"),
        ("//evil.example/console/", "/console/jobs"),
        ("/llm-ops/v1/keys", "/console/jobs"),
        (None, "/console/jobs"),
    ],
)
def test_sign_in_sends_back_to_console_pages_only(target: str | None, result: str) -> None:
    assert safe_next(target) == result


def request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "gw:8000", **headers}.items()]
    return Request({"type": "http", "method": "POST", "path": "/console/sign-in", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"origin": "http://gw:8000"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "same-origin"}, True),
        ({}, True),  # a client that sends neither (curl); the cookie is SameSite=Strict anyway
    ],
)
def test_forms_from_another_site_are_refused(headers: dict[str, str], allowed: bool) -> None:
    if allowed:
        same_origin(request(headers))
    else:
        with pytest.raises(CrossSiteRequest):
            same_origin(request(headers))
