"""``llmops lineage KIND ID``: the chain around one entity as a tree: what it came from (up)
and what it led to (down), read from the gateway's ``/lineage`` in one call."""

from __future__ import annotations

import json
from collections import defaultdict
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from llmops_cli.commands.train import ApiKey, GatewayUrl, answered, client_for

console = Console()


class Kind(StrEnum):
    """The kinds of entity the lineage knows (as the API spells them)."""

    dataset_version = "dataset-version"
    training_job = "training-job"
    pipeline = "pipeline"
    experiment_run = "experiment-run"
    model_version = "model-version"
    values_commit = "values-commit"
    endpoint = "endpoint"


class Direction(StrEnum):
    up = "up"
    down = "down"
    both = "both"


def _label(node: dict[str, Any], relation: str | None = None) -> str:
    status = f" [dim]{node['status']}[/dim]" if node.get("status") else ""
    via = f"[dim]{relation}:[/dim] " if relation else ""
    links = "".join(f"\n[dim]  {name}: {url}[/dim]" for name, url in node["links"].items())
    return f"{via}[bold]{node['kind']}[/bold] {node['label']}{status}{links}"


def _grow(
    tree: Tree,
    key: str,
    nodes: dict[str, dict[str, Any]],
    steps: dict[str, list[tuple[str, str]]],
    seen: set[str],
) -> None:
    for other, relation in steps.get(key, []):
        branch = tree.add(_label(nodes[other], relation))
        if other not in seen:  # a node reached twice is shown, not walked again
            seen.add(other)
            _grow(branch, other, nodes, steps, seen)


def lineage(
    kind: Annotated[Kind, typer.Argument(help="What ID names.")],
    entity_id: Annotated[str, typer.Argument(metavar="ID", help="A model version: NAME/VERSION.")],
    direction: Annotated[
        Direction, typer.Option(help="up: what it came from; down: what it led to.")
    ] = Direction.both,
    depth: Annotated[int, typer.Option(min=1, max=20, help="Hops from the entity.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="Print the gateway's graph.")] = False,
    gateway: GatewayUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
) -> None:
    """Which data trained what, and where it runs: the lineage graph around one entity."""
    with client_for(gateway, api_key) as client, answered(gateway):
        graph = client.lineage(kind.value, entity_id, direction=direction.value, depth=depth)
    if json_output:
        print(json.dumps(graph, indent=2))
        return
    nodes = {node["key"]: node for node in graph["nodes"]}
    down: dict[str, list[tuple[str, str]]] = defaultdict(list)
    up: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for edge in graph["edges"]:
        down[edge["source"]].append((edge["target"], edge["relation"]))
        up[edge["target"]].append((edge["source"], edge["relation"]))
    root = graph["root"]
    if direction in ("up", "both") and up.get(root):
        came_from = Tree("[bold]came from[/bold]")
        _grow(came_from, root, nodes, up, {root})
        console.print(came_from)
    led_to = Tree(_label(nodes[root]))
    if direction in ("down", "both"):
        _grow(led_to, root, nodes, down, {root})
    console.print(led_to)
