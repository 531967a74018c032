"""The console's two graphs as inline SVG: the lineage around an entity, and a pipeline's DAG
with the phase of each stage (pure: no I/O, no template).

Server-rendered, no front-end build: the page embeds the returned markup as is, so it is a
:class:`~markupsafe.Markup` (Jinja2 does not escape it again) and everything in it that came
from data (labels, ids, statuses, messages, URLs) is escaped here, links only to ``http(s)``
or to a path of this site. Colours are left to the stylesheet through classes (``status-*``,
``phase-*``, ``root``); the attributes carry plain defaults, so a graph stays legible without
it. The boxes come from :mod:`.layout` (columns by longest path, cycles tolerated).

A pipeline's stages are read from the manifest the workflow worker applied (the Argo DAG:
its tasks and their ``depends``) and matched with the nodes it reported: Argo reports pods
(``<workflow>.<task>``, or the bare ``<task>``, with ``(n)`` per retry and ``(i:item)`` per
fan-out item), the built-in Jobs and the local backend report one node per stage. Without a
DAG (no manifest, or Jobs/manifests backends) the reported nodes are drawn as a chain.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

from llmops_gateway.console.layout import Box, Placement, edge_path, layers, place
from llmops_gateway.domain.lineage import Lineage, Node

__all__ = ["Stage", "css_token", "lineage_svg", "pipeline_stages", "pipeline_svg", "safe_href"]

NODE_WIDTH = 220
NODE_HEIGHT = 56
LABEL_CHARS = 28
"""The label's 12px line fits the box at about this many characters; the rest goes to the
tooltip (``<title>``)."""
SMALL_CHARS = 36
SHOWN_FIRST = ("Error", "Failed", "Running", "Pending")
"""The phase a fanned-out task shows when its pods differ: a failure first, then what is
still going on; otherwise the first pod's (all Succeeded, say)."""

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_CLASS = re.compile(r"[^a-z0-9]+")
_ATTEMPT = re.compile(r"\((\d+)\)$")
_OPERAND = re.compile(r"[A-Za-z0-9_][-A-Za-z0-9_.]*")


def _e(value: object) -> str:
    """Data as XML text or attribute value: escaped, quotes included, and without the control
    characters XML forbids (one would make the whole SVG unparseable as XML)."""
    return html.escape(_XML_INVALID.sub("", str(value)), quote=True)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def css_token(value: str | None) -> str:
    """A status or phase as a class suffix the stylesheet can match: lowercased, every run of
    other characters than ``[a-z0-9]`` a ``-`` (``PR open`` -> ``pr-open``); ``none`` when
    missing. Data never reaches the class attribute unsanitised."""
    return _NOT_CLASS.sub("-", (value or "").lower()).strip("-") or "none"


def safe_href(url: str | None) -> str | None:
    """``url`` when a link may point there: ``http(s)`` with a host, or a path of this site
    (``/...``, but not ``//host`` nor ``/\\host``, which browsers read as another host). Never
    ``javascript:``, ``data:``...; whitespace and control characters (which browsers strip,
    turning ``java\\tscript:`` back into a scheme) refuse the URL outright."""
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    if url.startswith("/"):
        return None if url[1:2] in ("/", "\\") else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _svg(placement: Placement, graph: str, label: str, body: Iterable[str]) -> Markup:
    width, height = placement.width, placement.height
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph {graph}-graph" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(label)}" font-family="system-ui, sans-serif">'
        f'<defs><marker id="{graph}-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>'
        f"{''.join(body)}</svg>"
    )


def _edge(graph: str, source: tuple[str, Box], target: tuple[str, Box], title: str) -> str:
    return (
        f'<path class="edge" d="{edge_path(source[1], target[1])}" '
        f'data-source="{_e(source[0])}" data-target="{_e(target[0])}" fill="none" '
        f'stroke="#888" stroke-width="1.5" marker-end="url(#{graph}-arrow)">'
        f"<title>{_e(title)}</title></path>"
    )


def _node(
    box: Box,
    *,
    classes: str,
    data: tuple[str, str],
    title: str,
    rows: tuple[tuple[str, str], tuple[str, str], tuple[str, str]],
    href: str | None = None,
    emphasis: bool = False,
) -> str:
    """A rounded box with three lines (small, label, small) and the full text as tooltip."""
    x, y, left = box.x, box.y, box.x + 10
    (top_class, top), (label_class, label), (bottom_class, bottom) = rows
    inner = (
        f'<rect x="{x}" y="{y}" width="{box.width}" height="{box.height}" rx="8" ry="8" '
        f'fill="#fff" stroke="{"#333" if emphasis else "#999"}" '
        f'stroke-width="{2.5 if emphasis else 1}"/>'
        f'<text class="{top_class}" x="{left}" y="{y + 16}" font-size="10" fill="#666">'
        f"{_e(truncate(top, SMALL_CHARS))}</text>"
        f'<text class="{label_class}" x="{left}" y="{y + 33}" font-size="12" '
        f'font-weight="600" fill="#222">{_e(truncate(label, LABEL_CHARS))}</text>'
        f'<text class="{bottom_class}" x="{left}" y="{y + 48}" font-size="10" fill="#444">'
        f"{_e(truncate(bottom, SMALL_CHARS))}</text>"
    )
    if href is not None:
        inner = f'<a href="{_e(href)}">{inner}</a>'
    name, value = data
    return f'<g class="{classes}" {name}="{_e(value)}"><title>{_e(title)}</title>{inner}</g>'


def lineage_svg(graph: Lineage, href: Callable[[Node], str | None] | None = None) -> Markup:
    """The lineage as an SVG, sources on the left. ``href(node)`` gives the page a node links
    to (kept only if :func:`safe_href` accepts it); the root is drawn with class ``root``."""
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        nodes.setdefault(node.key, node)
    edges = [e for e in graph.edges if e.source in nodes and e.target in nodes]
    placement = place(
        layers(list(nodes), [(e.source, e.target) for e in edges]),
        width=NODE_WIDTH,
        height=NODE_HEIGHT,
    )
    boxes = placement.boxes
    body = [
        _edge("lineage", (e.source, boxes[e.source]), (e.target, boxes[e.target]), e.relation)
        for e in edges
        if e.source != e.target
    ]
    for key, node in nodes.items():
        is_root = key == graph.root
        extra = [f"status: {node.status}" if node.status else "", node.environment or ""]
        body.append(
            _node(
                boxes[key],
                classes=f"node kind-{css_token(node.kind)} status-{css_token(node.status)}"
                + (" root" if is_root else ""),
                data=("data-key", key),
                title="\n".join(line for line in [node.label, key, *extra] if line),
                rows=(("kind", node.kind), ("label", node.label), ("status", node.status or "")),
                href=safe_href(href(node)) if href is not None else None,
                emphasis=is_root,
            )
        )
    root = nodes.get(graph.root)
    label = f"Lineage of {root.kind} {root.label}" if root else "Lineage"
    return _svg(placement, "lineage", f"{label}: {len(nodes)} nodes", body)


@dataclass(frozen=True)
class Stage:
    """One task of a pipeline's DAG and what its nodes reported (``phase`` None: nothing)."""

    name: str
    phase: str | None = None
    depends: tuple[str, ...] = ()
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class _Report:
    """A reported node, its name split: ``base`` (``[<workflow>.]<task>``), the fan-out
    ``item`` suffix and the retry ``attempt`` (-1 without one)."""

    base: str
    item: str
    attempt: int
    node: Mapping[str, Any]


def _text(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value not in (None, "") else None


def _report(node: object) -> _Report | None:
    if not isinstance(node, Mapping) or not isinstance(node.get("name"), str) or not node["name"]:
        return None
    base, paren, rest = node["name"].partition("(")
    suffix = paren + rest
    attempt = _ATTEMPT.search(suffix)
    if attempt is None:
        return _Report(base, suffix, -1, node)
    return _Report(base, suffix[: attempt.start()], int(attempt.group(1)), node)


def _task_of(base: str, tasks: Mapping[str, object]) -> str | None:
    """The task a node belongs to: its bare name, or the part after ``<workflow>.``."""
    if base in tasks:
        return base
    tail = base.rpartition(".")[2]
    return tail if tail in tasks else None


def _dependencies(task: Mapping[str, Any], names: Mapping[str, object]) -> tuple[str, ...]:
    """The tasks ``task`` waits for: the operands of its ``depends`` expression (``a &&
    b.Succeeded || !c``; an operand ``task.Result`` names ``task``), else ``dependencies``."""
    depends, listed = task.get("depends"), task.get("dependencies")
    if isinstance(depends, str):
        found = [t if t in names else t.split(".", 1)[0] for t in _OPERAND.findall(depends)]
    elif isinstance(listed, list):
        found = [str(item) for item in listed]
    else:
        found = []
    own = task.get("name")
    return tuple(dict.fromkeys(name for name in found if name in names and name != own))


def dag_tasks(manifest: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """The tasks of the manifest's DAG (its entrypoint's, else the first template with one),
    in order, with their dependencies; empty when there is none."""
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("templates"), list):
        return {}
    templates = [t for t in spec["templates"] if isinstance(t, Mapping)]
    dags = [t for t in templates if isinstance(t.get("dag"), Mapping)]
    entry = [t for t in dags if t.get("name") == spec.get("entrypoint")]
    chosen = next(iter(entry or dags), None)
    raw = chosen["dag"].get("tasks") if chosen is not None else None
    tasks = [t for t in raw if isinstance(t, Mapping)] if isinstance(raw, list) else []
    names: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        if isinstance(task.get("name"), str) and task["name"]:
            names.setdefault(task["name"], task)
    return {name: _dependencies(task, names) for name, task in names.items()}


def _merge(name: str, depends: tuple[str, ...], reports: Sequence[_Report]) -> Stage:
    """A stage from its nodes: per fan-out item the latest attempt (a retry that succeeded
    is a success), then the most telling phase over the items (:data:`SHOWN_FIRST`). It
    started with its first attempt and finished when every item's latest one had."""
    latest: dict[str, tuple[int, int, Mapping[str, Any]]] = {}
    for order, report in enumerate(reports):
        seen = latest.get(report.item)
        if seen is None or (report.attempt, order) >= seen[:2]:
            latest[report.item] = (report.attempt, order, report.node)
    chosen = [node for _, _, node in sorted(latest.values(), key=lambda seen: seen[1])]
    phases = [p for p in (_text(n.get("phase")) for n in chosen) if p]
    phase = next((p for p in SHOWN_FIRST if p in phases), phases[0] if phases else None)
    telling = [n for n in chosen if _text(n.get("phase")) == phase] + chosen
    message = next((m for m in (_text(n.get("message")) for n in telling) if m), None)
    started = [s for s in (_text(r.node.get("started_at")) for r in reports) if s]
    finished = [f for f in (_text(n.get("finished_at")) for n in chosen) if f]
    return Stage(
        name,
        phase,
        depends,
        message,
        min(started) if started else None,
        max(finished) if finished and len(finished) == len(chosen) else None,
    )


def pipeline_stages(manifest: Mapping[str, Any] | None, nodes: Sequence[Any] | None) -> list[Stage]:
    """The stages to draw: the manifest's DAG tasks, each with the nodes reported for it
    (nodes of no task, such as the workflow's own, are left out); without a DAG, the reported
    nodes in order, each depending on the previous one (retries of a name are one stage)."""
    reports = [r for r in (_report(node) for node in nodes or ()) if r is not None]
    tasks = dag_tasks(manifest)
    if tasks:
        matched: dict[str, list[_Report]] = {name: [] for name in tasks}
        for report in reports:
            task = _task_of(report.base, tasks)
            if task is not None:
                matched[task].append(report)
        return [_merge(name, depends, matched[name]) for name, depends in tasks.items()]
    chain: dict[str, list[_Report]] = {}
    for report in reports:
        chain.setdefault(report.base, []).append(report)
    names = list(chain)
    return [
        _merge(name, (names[index - 1],) if index else (), chain[name])
        for index, name in enumerate(names)
    ]


def _duration(stage: Stage) -> str:
    """``took 4m 05s`` for a finished stage; empty when a time is missing or unreadable."""
    try:
        start = datetime.fromisoformat(stage.started_at or "")
        end = datetime.fromisoformat(stage.finished_at or "")
        seconds = int((end - start).total_seconds())
    except (TypeError, ValueError):
        return ""
    if seconds < 0:
        return ""
    hours, rest = divmod(seconds, 3600)
    return f"took {hours}h {rest // 60:02d}m" if hours else f"took {rest // 60}m {rest % 60:02d}s"


def pipeline_svg(stages: Sequence[Stage]) -> Markup:
    """The pipeline's DAG as an SVG, laid out like the lineage; each stage has the class
    ``phase-<phase>`` and its message (if any) in its tooltip."""
    by_name: dict[str, Stage] = {}
    for stage in stages:
        by_name.setdefault(stage.name, stage)
    edges = [
        (dep, stage.name)
        for stage in by_name.values()
        for dep in stage.depends
        if dep in by_name and dep != stage.name
    ]
    placement = place(layers(list(by_name), edges), width=NODE_WIDTH, height=NODE_HEIGHT)
    boxes = placement.boxes
    body = [_edge("pipeline", (s, boxes[s]), (t, boxes[t]), f"{t} after {s}") for s, t in edges]
    for name, stage in by_name.items():
        times = [f"started {stage.started_at}" if stage.started_at else ""]
        times.append(f"finished {stage.finished_at}" if stage.finished_at else "")
        lines = [name, stage.phase or "not reported", stage.message or "", *times]
        body.append(
            _node(
                boxes[name],
                classes=f"stage phase-{css_token(stage.phase)}",
                data=("data-stage", name),
                title="\n".join(line for line in lines if line),
                rows=(
                    ("duration", _duration(stage) or "stage"),
                    ("label", name),
                    ("phase", stage.phase or "not reported"),
                ),
            )
        )
    return _svg(placement, "pipeline", f"Pipeline of {len(by_name)} stages", body)
