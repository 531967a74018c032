"""How a worker's stream handler hands each event to the handler of its payload's class.

Every worker's ``handle_<stream>_event(event, ports)`` is the same: find the handler of the
payload's class, call it as ``handler(event, payload, ports)``, and skip (with an
``event_not_for_<service>`` log line) the event types other services act on. So a worker's is a
:class:`Dispatcher` of its :data:`Routes` (``app.py`` binds ``ports`` with
``functools.partial``, tests call it as they would a function); a handler returns its status
events (or its one status event), which the runtime commits with the ack.

A worker that reports a refused request before the runtime dead-letters it (serving, workflow)
passes ``refused``: on :class:`~llmops_shared.streams.NonRetryableError` it is awaited with the
error's message, then the error propagates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from llmops_shared.events import Envelope, Event, EventPayload
from llmops_shared.logging import get_logger
from llmops_shared.streams import NonRetryableError

P = TypeVar("P")

PayloadHandler: TypeAlias = Callable[[Event, Any, P], Awaitable[Envelope | list[Envelope]]]
"""``handler(event, payload, ports)``; ``payload`` is ``event.payload``, of the route's class."""

Routes: TypeAlias = Mapping[type[EventPayload], PayloadHandler[P]]
"""Payload class -> its handler; the first class the payload is an instance of wins, so a
subclass goes before its base (``DeploymentMigrationRequested`` before ``DeploymentRequested``)."""

Refused: TypeAlias = Callable[[Event, Any, P, str], Awaitable[None]]
"""``refused(event, payload, ports, reason)``: reports a request the handler refused."""

_log = get_logger(__name__)


@dataclass(frozen=True)
class Dispatcher(Generic[P]):
    """``await dispatcher(event, ports)``: the status events of the handler ``event``'s payload
    class routes to; an event no route takes is logged as ``event_not_for_<service>`` and
    skipped (no status events)."""

    service: str
    routes: Routes[P]
    refused: Refused[P] | None = None

    async def __call__(self, event: Event, ports: P) -> list[Envelope]:
        payload = event.payload
        handler = next((h for kind, h in self.routes.items() if isinstance(payload, kind)), None)
        if handler is None:
            _log.info(f"event_not_for_{self.service}", event_type=event.type)
            return []
        try:
            reported = await handler(event, payload, ports)
        except NonRetryableError as exc:
            if self.refused is not None:
                await self.refused(event, payload, ports, str(exc))
            raise
        return reported if isinstance(reported, list) else [reported]
