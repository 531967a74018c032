"""What the deployment tests share: paths, the services' settings classes, manifest look-ups and
compose's variable interpolation."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic_settings import BaseSettings

from llmops_gateway.config import GatewaySettings
from llmops_github_sync.config import GithubSyncSettings
from llmops_registry.config import RegistrySettings
from llmops_serving.config import ServingSettings
from llmops_tracking.config import TrackingSettings
from llmops_versioning.config import VersioningSettings
from llmops_workflow.config import WorkflowSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "llmops"
COMPOSE = DEPLOY / "compose" / "compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "tracking": TrackingSettings,
    "serving": ServingSettings,
    "workflow": WorkflowSettings,
    "registry": RegistrySettings,
    "versioning": VersioningSettings,
    "github-sync": GithubSyncSettings,
}
"""Every service of the workspace and the settings class its ``__main__`` reads."""

SERVICES = tuple(SETTINGS)

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]
"""The ``render`` fixture: ``render(values, namespace=...)`` -> the chart's manifests."""


def module_name(service: str) -> str:
    return "llmops_" + service.replace("-", "_")


def default_port(service: str) -> int:
    """The port a service listens on by default: the gateway's REST port (which serves its
    probes), a worker's health port."""
    field = "port" if service == "gateway" else "health_port"
    value = SETTINGS[service].model_fields[field].default
    assert isinstance(value, int)
    return value


def _field_names(
    model: type[BaseModel], prefix: str = "", *, secrets_only: bool = False
) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        aliases = [name]
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            aliases += [a for a in alias.choices if isinstance(a, str)]
        elif isinstance(alias, str):
            aliases.append(alias)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = f"{prefix}{name.upper()}__"
            names |= _field_names(annotation, nested, secrets_only=secrets_only)
        if not secrets_only or "SecretStr" in str(annotation):
            names |= {f"{prefix}{a.upper()}" for a in aliases}
    return names


def env_names(service: str) -> set[str]:
    """The environment variables the service's settings read: field names and aliases,
    upper-cased, nested models joined with ``__`` (pydantic-settings' rules)."""
    return _field_names(SETTINGS[service])


def secret_env_names(service: str) -> set[str]:
    """The variables whose fields are ``SecretStr``: credentials, which a manifest must take
    from a secret store, never from a plain value."""
    return _field_names(SETTINGS[service], secrets_only=True)


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def container_env(deployment: Manifest) -> list[dict[str, Any]]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env: list[dict[str, Any]] = container["env"]
    return env


def load_module(path: Path, name: str) -> types.ModuleType:
    """A deploy/ script imported from its file (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose_variables(value: Any) -> list[tuple[str, str | None, str | None]]:
    """Every ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` in a parsed compose file
    (keys and values; comments are not interpolated, so they are not looked at)."""
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += compose_variables(key) + compose_variables(item)
        return found
    if isinstance(value, list):
        return [v for item in value for v in compose_variables(item)]
    if isinstance(value, str):
        return [(m["name"], m["op"], m["arg"]) for m in _VARIABLE.finditer(value)]
    return []


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (the forms compose.yml uses) over a parsed value;
    a missing required variable raises ``LookupError`` as compose refuses to start."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = environ.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and not current:
            raise LookupError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)
