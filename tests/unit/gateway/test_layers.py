"""The gateway's layers, read from its source with ``ast`` (nothing is imported or run).

* ``api/`` (routers, schemas, dependencies) reaches the database only through the use cases:
  it imports neither ``db.repository`` nor ``db.session``, and opens no session;
* the use-case layer (``domain/`` and ``operations/``) imports no Redis or HTTP client and no
  web framework (those are ``adapters/`` and ``api/``), and nothing of the layers above it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

pytestmark = pytest.mark.unit

PACKAGE: Final = Path(__file__).resolve().parents[3] / "services/gateway/src/llmops_gateway"
API: Final = ("api", "console")
USE_CASES: Final = ("domain", "operations")

DATABASE_ACCESS: Final = ("llmops_gateway.db.repository", "llmops_gateway.db.session")
CLIENTS_AND_FRAMEWORKS: Final = ("redis", "httpx", "fastapi", "starlette")
LAYERS_ABOVE_USE_CASES: Final = (
    "llmops_gateway.api",
    "llmops_gateway.adapters",
    "llmops_gateway.app",
    "llmops_gateway.state",
)
SESSION_OPENERS: Final = frozenset({"sessions", "begin", "session_factory", "Session"})


def modules(*packages: str) -> list[Path]:
    found = sorted(path for package in packages for path in (PACKAGE / package).rglob("*.py"))
    assert found, f"no modules under {packages}: has the gateway moved?"
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return imported_by(source, module_name(path), is_package=path.name == "__init__.py")


def imported_by(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module name ``source`` (module ``module``) imports, at any depth (``TYPE_CHECKING``
    blocks included); ``from a import b`` gives both ``a`` and ``a.b`` (``b`` may be a module),
    a relative import is resolved first."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def breaches(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module_name(path)} imports {name}"
        for path in paths
        for name in imported(path)
        if within(name, forbidden)
    )


def test_the_api_reaches_the_database_only_through_the_use_cases() -> None:
    assert breaches(modules(*API), DATABASE_ACCESS) == []


def test_the_api_opens_no_session() -> None:
    """No ``sessions()``, ``sessions.begin()`` or ``Session(...)`` call in ``api/``: the use
    cases open the transactions (they are handed ``state.sessions``, never a session)."""
    calls = []
    for path in modules(*API):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in SESSION_OPENERS:
                calls.append(f"{module_name(path)}:{node.lineno} calls {name}()")
    assert calls == []


def test_the_use_cases_use_no_redis_http_client_or_web_framework() -> None:
    assert breaches(modules(*USE_CASES), CLIENTS_AND_FRAMEWORKS) == []


def test_the_use_cases_depend_on_no_layer_above_them() -> None:
    assert breaches(modules(*USE_CASES), LAYERS_ABOVE_USE_CASES) == []


def test_the_import_reader_sees_every_form() -> None:
    source = (
        "from llmops_gateway.db import repository\n"
        "import redis.asyncio as aioredis\n"
        "def f():\n"
        "    from ..db import session\n"
    )
    names = imported_by(source, "llmops_gateway.api.sample")
    assert {"llmops_gateway.db.repository", "llmops_gateway.db.session"} <= names
    assert within("redis.asyncio", CLIENTS_AND_FRAMEWORKS)
    assert not within("redisx", CLIENTS_AND_FRAMEWORKS)
