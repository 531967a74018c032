"""Fixtures of the deployment tests: the Helm chart rendered by Helm itself, the ACL generator,
and settings built from a manifest's environment.

Helm: the chart is rendered and linted by Helm's own Go engine through ``helm-python-sdk`` (a
pinned dev dependency whose wheel bundles Helm 4's SDK as a shared library, so no ``helm``
binary is needed). There is no fallback and no skip: CI renders and validates the real templates.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import helm_python
import pytest
import yaml

from deploy.helpers import CHART, DEPLOY, SETTINGS, Manifest, Render, env_names, load_module


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Mapping[str, str]], Any]:
    """Build a service's settings from exactly ``env`` (nothing from the test's own environment
    or a ``.env`` file): what the service's ``__main__`` reads in that container. Raises
    pydantic's ``ValidationError`` when the service would refuse to start."""

    def build(service: str, env: Mapping[str, str]) -> Any:
        for name in env_names(service) | {"LLMOPS_DATA_DIR"}:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return SETTINGS[service](_env_file=None)  # type: ignore[call-arg]

    return build


@pytest.fixture(scope="session")
def helm_chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as chart:
        yield chart


@pytest.fixture(scope="session")
def render(helm_chart: helm_python.Chart) -> Render:
    """``render(values, namespace=...)``: every manifest Helm renders, parsed (NOTES excluded)."""

    def _render(
        values: dict[str, Any] | None = None, *, namespace: str = "llmops", name: str = "llmops"
    ) -> list[Manifest]:
        rendered = helm_chart.render(values or {}, name=name, namespace=namespace)
        docs: list[Manifest] = []
        for path, text in sorted(rendered.items()):
            if not path.endswith("NOTES.txt"):
                docs += [doc for doc in yaml.safe_load_all(text) if doc is not None]
        return docs

    return _render


@pytest.fixture(scope="session")
def acl() -> types.ModuleType:
    """``deploy/redis/acl.py``, the Redis ACL generator."""
    return load_module(DEPLOY / "redis" / "acl.py", "llmops_deploy_acl")
