"""What the deployment tests share: paths, the services' settings classes, manifest look-ups,
compose's variable interpolation, and the Dockerfiles: their instructions, their build context
and the uv commands they run, reproduced without a Docker engine."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
TRAINER_DOCKERFILE = DEPLOY / "docker" / "trainer.Dockerfile"
BAKE_FILE = DEPLOY / "docker" / "docker-bake.json"
LOCK = ROOT / "uv.lock"

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


# ------------------------------------------------------------------------------- Dockerfiles


@dataclass
class Stage:
    """One ``FROM`` of a Dockerfile and the instructions under it."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages of a Dockerfile (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments may sit inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert match, line
            stages.append(Stage(match[1], match[2]))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede FROM: {line}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


def stage_chain(stages: list[Stage], name: str, args: Mapping[str, str]) -> list[Stage]:
    """The stage ``name`` and the stages it is built ``FROM``, base first (``${ARG}`` in a
    ``FROM`` expanded with ``args``, as BuildKit does with global ARGs)."""
    by_name = {s.name: s for s in stages if s.name}
    chain = [by_name[name]]
    while True:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), chain[0].base)
        if base not in by_name:
            return chain
        chain.insert(0, by_name[base])


def copied_before(stage: Stage, instruction: str) -> set[str]:
    """The context paths the ``COPY`` instructions of ``stage`` name before ``instruction``
    (a ``RUN``'s arguments), as written: ``COPY shared/pyproject.toml shared/`` gives
    ``shared/pyproject.toml``."""
    sources: set[str] = set()
    for keyword, args in stage.instructions:
        if keyword == "RUN" and args == instruction:
            return sources
        if keyword == "COPY" and "--from=" not in args:
            sources |= set(shlex.split(args)[:-1])
    raise AssertionError(f"no RUN {instruction!r} in the stage")


def dockerignore(dockerfile: Path) -> list[str]:
    """The patterns of ``<Dockerfile>.dockerignore`` (what BuildKit uses beside a Dockerfile)."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    lines = [line.strip() for line in ignore.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def in_build_context(relpath: str, patterns: Iterable[str]) -> bool:
    """Whether ``relpath`` (a file, relative to the context root) is sent to the builder:
    Docker's rule, the last pattern that matches the path or one of its parents decides."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(p) for p in prefixes):
            included = not exclude
    return included


def copy_build_inputs(dockerfile: Path, chain: list[Stage], dest: Path) -> list[str]:
    """Lay out in ``dest`` (the builder's WORKDIR) exactly what the ``COPY`` instructions of
    ``chain`` take from the build context, filtered by the Dockerfile's ``.dockerignore``;
    returns the files copied. A source the context lacks fails, as the build would."""
    patterns = dockerignore(dockerfile)
    copied: list[str] = []
    for stage in chain:
        for args in stage.all("COPY"):
            if "--from=" in args:  # from another stage, not from the context
                continue
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            *sources, target = words
            for source in sources:
                path = ROOT / source
                files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                files = [
                    f
                    for f in files
                    if f.exists() and in_build_context(f.relative_to(ROOT).as_posix(), patterns)
                ]
                assert files, f"COPY {source}: not in the build context"
                for file in files:
                    if path.is_dir():
                        out = dest / target / file.relative_to(path)
                    else:
                        out = dest / target / file.name if target.endswith("/") else dest / target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(file, out)
                    copied.append(out.relative_to(dest).as_posix())
    return copied


# ------------------------------------------------------------------------------ uv and the lock


def uv(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the ``uv`` that runs the tests (``uv run`` exports it as ``UV``)."""
    exe = os.environ.get("UV") or shutil.which("uv")
    assert exe, "uv is needed: run the tests with `uv run pytest`"
    return subprocess.run(
        [exe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "UV_OFFLINE": "1", "UV_NO_PROGRESS": "1"},
    )


def exported_packages(text: str) -> dict[str, str]:
    """``name -> version`` of a ``uv export`` (requirements format)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def lock() -> dict[str, Any]:
    with LOCK.open("rb") as file:
        return tomllib.load(file)


def workspace_manifests() -> dict[str, str]:
    """Every workspace member of the lock -> its ``pyproject.toml``, relative to the root."""
    data = lock()
    members = set(data["manifest"]["members"])
    out = {}
    for package in data["package"]:
        source = package["source"]
        path = source.get("editable") or source.get("virtual") or source.get("directory")
        if package["name"] in members and path is not None:
            out[package["name"]] = (Path(path) / "pyproject.toml").as_posix()
    assert set(out) == members, members - set(out)
    return out
