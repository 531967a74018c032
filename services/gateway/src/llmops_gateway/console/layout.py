"""Where the console's graphs put their boxes: a layered drawing, left to right (pure).

Both graphs (the lineage, a pipeline's DAG) flow one way, so a node's column is the length of
the longest path from a source to it: every edge then points right and a node with several
predecessors sits right of all of them. Data is data, not a promise of a DAG: edges that close
a cycle are set aside before layering (a depth-first search keeps every other edge), so any
input terminates. Within a column, nodes are ordered by the mean position of their neighbours
in the previous column (a few barycentre sweeps): not optimal, but it undoes most crossings of
the small graphs the console shows, in linear time. No dependency: the boxes are plain
numbers the SVG writer (:mod:`.graphs`) turns into elements.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SWEEPS = 2
"""Down-and-up barycentre passes; more rarely changes anything on graphs this small."""


@dataclass(frozen=True)
class Box:
    """A node's rectangle, in SVG user units (top-left corner, size)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def middle(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Placement:
    """Every node's box and the size of the drawing (the SVG's viewBox)."""

    boxes: dict[str, Box]
    width: int
    height: int


def _successors(keys: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each node's distinct successors; self-loops and edges to unknown nodes are dropped."""
    succ: dict[str, list[str]] = {key: [] for key in keys}
    for source, target in edges:
        if source in succ and target in succ and source != target and target not in succ[source]:
            succ[source].append(target)
    return succ


def acyclic(keys: Sequence[str], succ: dict[str, list[str]]) -> dict[str, list[str]]:
    """``succ`` without the edges that close a cycle (back edges of a depth-first search
    started from the sources first, so the edge dropped is the one "returning upstream").
    Iterative: a long chain does not hit the recursion limit."""
    has_pred = {target for targets in succ.values() for target in targets}
    starts = [key for key in keys if key not in has_pred] + [k for k in keys if k in has_pred]
    state = dict.fromkeys(keys, 0)  # 0 unseen, 1 on the current path, 2 done
    kept: dict[str, list[str]] = {key: [] for key in keys}
    for start in starts:
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            node, pending = stack[-1]
            target = next(pending, None)
            if target is None:
                state[node] = 2
                stack.pop()
            elif state[target] != 1:  # an edge to the current path would close a cycle
                kept[node].append(target)
                if state[target] == 0:
                    state[target] = 1
                    stack.append((target, iter(succ[target])))
    return kept


def _levels(keys: Sequence[str], dag: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source to each node (Kahn's order over an acyclic ``dag``)."""
    indegree = dict.fromkeys(keys, 0)
    for targets in dag.values():
        for target in targets:
            indegree[target] += 1
    level = dict.fromkeys(keys, 0)
    ready = deque(key for key in keys if indegree[key] == 0)
    while ready:
        node = ready.popleft()
        for target in dag[node]:
            level[target] = max(level[target], level[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return level


def _centred(column: list[str]) -> dict[str, float]:
    """Positions as drawn: columns are centred vertically, so index minus half the length."""
    half = (len(column) - 1) / 2
    return {key: index - half for index, key in enumerate(column)}


def _sweep(columns: list[list[str]], neighbours: dict[str, list[str]], order: range) -> None:
    """Sort each column of ``order`` by the mean position of its ``neighbours`` (as the
    sweep last left them); nodes without any keep their place."""
    position: dict[str, float] = {}
    for column in columns:
        position.update(_centred(column))
    for index in order:
        column = columns[index]
        current = _centred(column)

        def key(node: str, current: dict[str, float] = current) -> tuple[float, float]:
            placed = [position[n] for n in neighbours[node]]
            return (sum(placed) / len(placed) if placed else current[node], current[node])

        column.sort(key=key)
        position.update(_centred(column))


def layers(keys: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The columns, left to right, each ordered top to bottom. Duplicate keys count once;
    the first column keeps the input order before the sweeps."""
    order = list(dict.fromkeys(keys))
    if not order:
        return []
    dag = acyclic(order, _successors(order, edges))
    level = _levels(order, dag)
    columns: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for key in order:
        columns[level[key]].append(key)
    preds: dict[str, list[str]] = {key: [] for key in order}
    for source, targets in dag.items():
        for target in targets:
            preds[target].append(source)
    for _ in range(SWEEPS):
        _sweep(columns, preds, range(1, len(columns)))
        _sweep(columns, dag, range(len(columns) - 2, -1, -1))
    _sweep(columns, preds, range(1, len(columns)))
    return columns


def place(
    columns: Sequence[Sequence[str]],
    *,
    width: int = 200,
    height: int = 56,
    gap_x: int = 56,
    gap_y: int = 16,
    margin: int = 12,
) -> Placement:
    """Boxes of ``width`` x ``height``: column ``i`` at ``x = margin + i * (width + gap_x)``,
    each column centred on the tallest one, so no two boxes overlap."""
    tallest = max((len(column) for column in columns), default=0)
    pitch = height + gap_y
    boxes: dict[str, Box] = {}
    for index, column in enumerate(columns):
        x = margin + index * (width + gap_x)
        top = margin + (tallest - len(column)) * pitch // 2
        for row, key in enumerate(column):
            boxes.setdefault(key, Box(x, top + row * pitch, width, height))
    count = len(columns)
    total_width = 2 * margin + count * width + max(count - 1, 0) * gap_x
    total_height = 2 * margin + tallest * height + max(tallest - 1, 0) * gap_y
    return Placement(boxes, max(total_width, 2 * margin), max(total_height, 2 * margin))


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def edge_path(source: Box, target: Box) -> str:
    """An SVG path ``d`` from the right side of ``source`` to the left side of ``target``: a
    horizontal S curve, which also stays readable for an edge that points back (a cycle)."""
    x1, y1, x2, y2 = source.right, source.middle, target.x, target.middle
    bend = max(abs(x2 - x1) / 2, 24)
    return (
        f"M{_number(x1)},{_number(y1)} C{_number(x1 + bend)},{_number(y1)} "
        f"{_number(x2 - bend)},{_number(y2)} {_number(x2)},{_number(y2)}"
    )
