"""Structured logging: JSON lines with the service name and the request's correlation id.

``configure_logging`` is called once by a service's wiring (never at import). While a consumer
runs a handler, :class:`event_log_context` puts the event id, type and correlation id into every
line logged, so each line can be joined with the gateway request that caused it. It uses one
context variable set once per event (cheaper on the hot path than binding keys one by one).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import structlog

_EVENT_CONTEXT: ContextVar[Mapping[str, object] | None] = ContextVar(
    "llmops_event_context", default=None
)


class event_log_context:
    """Add ``values`` to every log line written inside the ``with`` block (this task only)."""

    __slots__ = ("_token", "_values")

    def __init__(self, **values: object) -> None:
        self._values = values
        self._token: Token[Mapping[str, object] | None] | None = None

    def __enter__(self) -> None:
        self._token = _EVENT_CONTEXT.set(self._values)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _EVENT_CONTEXT.reset(self._token)


def _merge_event_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    context = _EVENT_CONTEXT.get()
    if context:
        for key, value in context.items():
            event_dict.setdefault(key, value)
    return event_dict


def configure_logging(*, service: str, level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog output through one JSON (or console) renderer on stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _merge_event_context,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; works before ``configure_logging`` too (falls back to defaults)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
