"""``/lineage/{kind}/{id}``: which data trained what, and where it runs, in one call.

"Which endpoints serve a model trained on dataset X v1.2.0?" is
``GET /lineage/dataset-version/<id>?direction=down``; "which dataset versions trained what
prod serves?" is ``GET /lineage/endpoint/<id>?direction=up``. Read from the gateway's own
records (see :mod:`llmops_gateway.domain.lineage`); any viewer, with the endpoints of
environments the caller may not view left out.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from llmops_gateway.api.auth import CurrentCaller
from llmops_gateway.api.deps import State
from llmops_gateway.api.routes import Routes
from llmops_gateway.api.schemas.lineage import LineageOut
from llmops_gateway.domain.lineage import Direction, Kind, lineage
from llmops_gateway.security.access import Scope

routes = Routes.at(
    "/lineage", tag="lineage", scope=Scope.ANY, not_found="The platform has no such entity"
)
router = routes.router


@routes.read("/{kind}/{entity_id:path}", summary="The lineage graph around one entity")
def read_lineage(
    kind: Kind,
    entity_id: Annotated[
        str,
        Path(max_length=512, description="A model version's id is <name>/<version>."),
    ],
    state: State,
    caller: CurrentCaller,
    direction: Annotated[
        Direction, Query(description="down: what it led to; up: what it came from.")
    ] = "both",
    depth: Annotated[int, Query(ge=1, le=20, description="Hops from the entity.")] = 10,
) -> LineageOut:
    graph = lineage(
        state.sessions,
        kind,
        entity_id,
        direction=direction,
        depth=depth,
        environments=caller.viewable(),
    )
    return LineageOut.of(graph)
