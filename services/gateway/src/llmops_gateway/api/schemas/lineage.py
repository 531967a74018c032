"""Bodies of ``/lineage``: the graph around one entity."""

from __future__ import annotations

from pydantic import Field

from llmops_gateway.api.schemas.common import CamelModel
from llmops_gateway.domain.lineage import Lineage, Node


class LineageNodeOut(CamelModel):
    key: str = Field(description="<kind>:<id>, what edges refer to.")
    kind: str
    id: str
    label: str
    status: str | None
    environment: str | None = Field(description="An endpoint's environment; null otherwise.")
    links: dict[str, str] = Field(
        description="Where to look in the tool itself: mlflow (the run), workflow "
        "(namespace/name), pull_request, endpoint (its URL)."
    )

    @classmethod
    def of(cls, node: Node) -> LineageNodeOut:
        return cls.from_row(node, key=node.key)


class LineageEdgeOut(CamelModel):
    source: str = Field(description="The upstream node's key.")
    target: str = Field(description="The downstream node's key.")
    relation: str = Field(description="trained, ran, tracked, registered, synced or served.")


class LineageOut(CamelModel):
    root: str
    nodes: list[LineageNodeOut]
    edges: list[LineageEdgeOut]

    @classmethod
    def of(cls, graph: Lineage) -> LineageOut:
        return cls(
            root=graph.root,
            nodes=[LineageNodeOut.of(node) for node in graph.nodes],
            edges=[LineageEdgeOut.from_row(edge) for edge in graph.edges],
        )
