"""The console's two graphs as inline SVG: the lineage around an entity, and a pipeline's DAG
with the phase of each stage (pure: no I/O, no template).

Server-rendered, no front-end build: the page embeds the returned markup as is, so it is a
:class:`~markupsafe.Markup` (Jinja2 does not escape it again) and everything in it that came
from data (labels, ids, statuses, messages, URLs) is escaped here, links only to ``http(s)``
or to a path of this site. Colours are left to the stylesheet through classes (``status-*``,
``phase-*``, ``root``); the attributes carry plain defaults, so a graph stays legible without
it. The boxes come from :mod:`.layout` (columns by longest path, cycles tolerated).

A pipeline's stages (what to draw) are read by :mod:`.stages`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from markupsafe import Markup

from llmops_gateway.console.layout import Box, Placement, edge_path, layers, place
from llmops_gateway.console.stages import Stage, pipeline_stages
from llmops_gateway.domain.lineage import Lineage, Node

__all__ = ["Stage", "css_token", "lineage_svg", "pipeline_stages", "pipeline_svg", "safe_href"]
# Stage and pipeline_stages live in .stages; they are re-exported for the pages and tests.

NODE_WIDTH = 220
NODE_HEIGHT = 56
LABEL_CHARS = 28
"""The label's 12px line fits the box at about this many characters; the rest goes to the
tooltip (``<title>``)."""
SMALL_CHARS = 36

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_CLASS = re.compile(r"[^a-z0-9]+")


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
