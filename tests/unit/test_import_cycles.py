"""No import cycles between our modules, and no oversized modules (stdlib only: ``ast``).

The graph covers every module of every workspace member (``*/src/llmops_*`` and
``services/*/src/llmops_*``, so a new member is picked up). Its edges follow grimp's
definition (the graph import-linter checks):

* ``import a.b.c`` is an edge to ``a.b.c``; no edge is added to the parent packages ``a`` and
  ``a.b``, although Python runs their ``__init__`` too;
* ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``;
  relative imports (``from . import x``, ``from ..y import z``) are resolved first;
* imports at any depth count (in functions, ``try`` blocks...), except under
  ``if TYPE_CHECKING:`` (never executed);
* only edges between our own modules are kept; a name that is not one of our modules goes to
  the nearest enclosing module that is.

One difference from grimp, on purpose: modules in folders without an ``__init__.py`` (implicit
namespace packages such as ``llmops_workflow/local/``) are in the graph, where grimp skips them.

A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import pytest

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parents[2]
MEMBER_GLOBS: Final = ("*/src/llmops_*", "services/*/src/llmops_*")
SIZE_GLOBS: Final = ("services/*/src", "shared/src", "cli/src")
MAX_LINES: Final = 400
SIZE_EXCLUDED: Final = ("migrations/versions/",)

Graph = dict[str, set[str]]


# -------------------------------------------------------------------------- the graph


def package_roots(root: Path, patterns: Iterable[str] = MEMBER_GLOBS) -> list[Path]:
    """The top-level packages (directories with an ``__init__.py``) the patterns match."""
    found = {path for pattern in patterns for path in root.glob(pattern)}
    return sorted(path for path in found if (path / "__init__.py").is_file())


def modules_of(packages: Iterable[Path]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under the packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth, except in the body of ``if TYPE_CHECKING:``."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _nearest(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name``, or the nearest enclosing name, that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _base_of_relative(module: str, path: Path, level: int, target: str | None) -> str:
    """What ``from <level dots><target> import ...`` in ``module`` names."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if level > 1:
        package = package[: len(package) - (level - 1)]
    return ".".join([*package, *([target] if target else [])])


def imported_by(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Our modules that ``module`` imports (grimp's edges)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = (
                _base_of_relative(module, path, node.level, node.module)
                if node.level
                else node.module or ""
            )
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for name in names:
            if (target := _nearest(name, modules)) is not None and target != module:
                targets.add(target)
    return targets


def import_graph(modules: Mapping[str, Path]) -> Graph:
    return {module: imported_by(module, path, modules) for module, path in modules.items()}


# ----------------------------------------------------------------------- the cycles


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in graph:
                    continue
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The components of more than one module, largest first."""
    found = [c for c in strongly_connected(graph) if len(c) > 1]
    return sorted(found, key=lambda c: (-len(c), c))


def one_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest import loop through the component's first module, for the message."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(graph[node] & members):
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    return component


def describe(graph: Mapping[str, set[str]], found: list[list[str]]) -> str:
    lines = [f"{len(found)} import cycle(s):"]
    for number, component in enumerate(found, 1):
        lines.append(f"cycle {number} ({len(component)} modules): {', '.join(component)}")
        lines.append("  e.g. " + " -> ".join(one_cycle(graph, component)))
    return "\n".join(lines)


# ----------------------------------------------------------------- our repository


def test_the_workspace_members_are_found() -> None:
    """Guards the check itself: it must not pass because it looked at nothing."""
    names = {path.name for path in package_roots(ROOT)}
    assert {"llmops_shared", "llmops_gateway", "llmops_trainer"} <= names
    assert len(modules_of(package_roots(ROOT))) > 100


def test_our_packages_have_no_import_cycles() -> None:
    graph = import_graph(modules_of(package_roots(ROOT)))
    found = cycles(graph)
    assert not found, describe(graph, found)


def oversized(root: Path, limit: int = MAX_LINES) -> list[str]:
    """``path: lines`` of every module over ``limit`` lines (migration scripts excluded)."""
    over: list[str] = []
    for source in sorted({path for pattern in SIZE_GLOBS for path in root.glob(pattern)}):
        for path in sorted(source.rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if any(part in relative for part in SIZE_EXCLUDED):
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                over.append(f"{relative}: {lines}")
    return over


def test_no_module_is_over_400_lines() -> None:
    over = oversized(ROOT)
    assert not over, f"{len(over)} module(s) over {MAX_LINES} lines:\n" + "\n".join(over)


# ------------------------------------------------------------- the finder, checked


def write_package(root: Path, files: Mapping[str, str]) -> list[Path]:
    """A synthetic source tree ``root/pkg/...`` from ``{relative path: source}``."""
    for relative, source in files.items():
        path = root / "pkg" / "src" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return package_roots(root, ("*/src/llmops_*",))


def synthetic_graph(tmp_path: Path, files: Mapping[str, str]) -> Graph:
    return import_graph(modules_of(write_package(tmp_path, files)))


def test_the_finder_reports_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    graph = synthetic_graph(
        tmp_path,
        {
            "llmops_x/__init__.py": "",
            "llmops_x/a.py": "from llmops_x import b\n",
            "llmops_x/b.py": "def late():\n    import llmops_x.c\n",
            "llmops_x/c.py": "from llmops_x.a import thing\n",
            "llmops_x/d.py": "import llmops_x.a\n",
        },
    )
    assert cycles(graph) == [["llmops_x.a", "llmops_x.b", "llmops_x.c"]]
    assert one_cycle(graph, cycles(graph)[0]) == [
        "llmops_x.a",
        "llmops_x.b",
        "llmops_x.c",
        "llmops_x.a",
    ]


def test_the_finder_ignores_type_checking_imports(tmp_path: Path) -> None:
    graph = synthetic_graph(
        tmp_path,
        {
            "llmops_x/__init__.py": "",
            "llmops_x/a.py": "import llmops_x.b\n",
            "llmops_x/b.py": (
                "import typing\nfrom typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from llmops_x.a import A\n"
                "if typing.TYPE_CHECKING:\n    import llmops_x.a\n"
                "else:\n    import llmops_x.c\n"
            ),
            "llmops_x/c.py": "",
        },
    )
    assert graph["llmops_x.b"] == {"llmops_x.c"}
    assert cycles(graph) == []


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    graph = synthetic_graph(
        tmp_path,
        {
            "llmops_x/__init__.py": "from . import a\n",
            "llmops_x/a.py": "from .sub import b\nfrom .sub.b import name\n",
            "llmops_x/sub/__init__.py": "",
            "llmops_x/sub/b.py": "from .. import a\nfrom ..a import name\nfrom . import c\n",
            "llmops_x/sub/c.py": "from ...llmops_x import a\n",
        },
    )
    assert graph["llmops_x"] == {"llmops_x.a"}
    assert graph["llmops_x.a"] == {"llmops_x.sub.b"}
    assert graph["llmops_x.sub.b"] == {"llmops_x.a", "llmops_x.sub.c"}
    assert graph["llmops_x.sub.c"] == {"llmops_x.a"}
    assert cycles(graph) == [["llmops_x.a", "llmops_x.sub.b", "llmops_x.sub.c"]]


def test_importing_a_submodule_is_no_edge_to_its_parent_package(tmp_path: Path) -> None:
    """grimp's definition: ``import a.b.c`` and ``from a.b import c`` name ``a.b.c`` only, so
    a package ``__init__`` re-exporting its submodules is no cycle by itself."""
    graph = synthetic_graph(
        tmp_path,
        {
            "llmops_x/__init__.py": "from llmops_x.sub.b import B\n",
            "llmops_x/sub/__init__.py": "",
            "llmops_x/sub/b.py": "import llmops_x.sub.c\nfrom llmops_x.sub import c\n",
            "llmops_x/sub/c.py": "import json\nfrom llmops_x.sub import C_NAME\n",
        },
    )
    assert graph["llmops_x.sub.b"] == {"llmops_x.sub.c"}
    assert graph["llmops_x.sub.c"] == {"llmops_x.sub"}
    assert cycles(graph) == []


def test_the_size_check_counts_lines_and_skips_migration_scripts(tmp_path: Path) -> None:
    long = "x = 1\n" * (MAX_LINES + 1)
    for relative in (
        "services/svc/src/llmops_svc/big.py",
        "services/svc/src/llmops_svc/ok.py",
        "services/svc/src/llmops_svc/migrations/versions/0001_initial.py",
    ):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(long if "ok" not in relative else "x = 1\n" * MAX_LINES, encoding="utf-8")
    assert oversized(tmp_path) == [f"services/svc/src/llmops_svc/big.py: {MAX_LINES + 1}"]
