"""FastAPI dependencies (as ``Annotated`` aliases): state, the adapters the use cases are given,
paging, correlation id (the credential check is :mod:`llmops_gateway.api.auth`).

The use cases get the unit of work as ``state.sessions`` (a session factory: they open the
transactions); nothing in ``api/`` opens a session or imports the repository or session modules
(the response schemas read the ORM rows' attributes, see ``api/schemas``).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Query, Request

from llmops_gateway.api.schemas.common import Paging
from llmops_gateway.domain.experiment_runs import MetricsReader
from llmops_gateway.operations.dead_letters import DeadLetterStore
from llmops_gateway.operations.health_probes import HealthProbes
from llmops_gateway.state import GatewayState


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(get_state)]


def get_mlflow(state: State) -> MetricsReader | None:
    return state.mlflow


Mlflow = Annotated[MetricsReader | None, Depends(get_mlflow)]
"""MLflow's live run metrics; None without MLFLOW_TRACKING_URI."""


def get_dead_letters(state: State) -> DeadLetterStore | None:
    return state.dead_letters()


DeadLetters = Annotated[DeadLetterStore | None, Depends(get_dead_letters)]
"""The dead-letter streams; None while Redis is not connected."""


def get_health_probes(state: State) -> HealthProbes:
    return state.health_probes()


Probes = Annotated[HealthProbes, Depends(get_health_probes)]

MAX_OFFSET: Final = 1_000_000_000
"""The largest ``?offset=``: every database takes it (an unbounded one overflowed SQLite's
64-bit INTEGER into a 500), and no list is that long."""

Limit = Annotated[int, Query(ge=1, le=500)]
"""A page's size (``?limit=``)."""
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
"""How many items come before the page (``?offset=``, 0 to :data:`MAX_OFFSET`)."""


def get_paging(limit: Limit = 50, offset: Offset = 0) -> Paging:
    return Paging(limit=limit, offset=offset)


Pagination = Annotated[Paging, Depends(get_paging)]
"""The page a list route is asked for: every paged list has the same ``?limit=`` (default 50)
and ``?offset=`` parameters."""


def get_correlation_id(request: Request) -> str:
    """Set by :class:`llmops_gateway.api.middleware.RequestContextMiddleware`."""
    value: str = request.state.correlation_id
    return value


CorrelationId = Annotated[str, Depends(get_correlation_id)]
