"""Where a person looks at an entity in its own tool: MLflow, Argo, Git, the endpoint.

The gateway records what the workers reported (an MLflow run's URL, a pull request's URL, a
workflow's namespace and name, a commit's sha, an endpoint's URL); the web addresses of the
tools' own UIs are settings (``CONSOLE_ARGO_URL``, ``CONSOLE_GIT_COMMIT_URL``), since no report
can know how a person reaches them. A link is shown only when it is an http(s) URL.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from llmops_gateway.config import GatewaySettings
from llmops_gateway.console.graphs import safe_href
from llmops_gateway.domain.lineage import Node


def web_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None (never ``javascript:``)."""
    url = safe_href(value)
    return url if url is not None and urlsplit(url).netloc else None


def argo_workflow(settings: GatewaySettings, namespace: str | None, name: str) -> str | None:
    base = web_url(settings.console_argo_url)
    if base is None or not namespace:
        return None
    return f"{base.rstrip('/')}/workflows/{quote(namespace)}/{quote(name)}"


def git_commit(settings: GatewaySettings, sha: str | None) -> str | None:
    template = settings.console_git_commit_url
    if not template or not sha:
        return None
    return web_url(template.replace("{sha}", quote(sha)))


def tool_links(settings: GatewaySettings, node: Node) -> dict[str, str]:
    """A lineage node's links to the tools' UIs, by the tool's name."""
    links: dict[str, str] = {}
    for name, value in node.links.items():
        if name == "workflow":
            namespace, _, workflow = value.partition("/")
            url = argo_workflow(settings, namespace, workflow)
            if url:
                links["Argo"] = url
        elif url := web_url(value):
            links[{"mlflow": "MLflow", "pull_request": "Pull request"}.get(name, name)] = url
    if node.kind == "values-commit" and (url := git_commit(settings, node.id)):
        links["Git"] = url
    return links
