"""A pipeline's stages, read from what the workflow worker reported: the DAG of the manifest it
applied (the Argo tasks and their ``depends``) matched with the nodes it observed.

Argo reports pods (``<workflow>.<task>``, or the bare ``<task>``, with ``(n)`` per retry and
``(i:item)`` per fan-out item); the built-in Jobs and the local backend report one node per
stage. Without a DAG (no manifest, or the Jobs/manifests backends) the reported nodes form a
chain. Pure: :mod:`.graphs` draws the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

__all__ = ["Stage", "dag_tasks", "pipeline_stages"]

SHOWN_FIRST: Final = ("Error", "Failed", "Running", "Pending")
"""The phase a fanned-out task shows when its pods differ: a failure first, then what is
still going on; otherwise the first pod's (all Succeeded, say)."""

_ATTEMPT = re.compile(r"\((\d+)\)$")
_OPERAND = re.compile(r"[A-Za-z0-9_][-A-Za-z0-9_.]*")


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
