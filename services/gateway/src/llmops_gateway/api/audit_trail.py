"""The audit trail of the API: every mutation and every refused attempt becomes one record
(:mod:`llmops_gateway.domain.audit`).

A plain ASGI middleware: it sees the final status of every answer, including those the error
handlers make, and writes the record before the answer's last byte leaves, so a client that
reads ``/audit`` after its answer finds its record. Who: the caller the route's guard verified
(``request.state.caller``); what: the route's template, and the entity named by its path (or,
for a create, the ``id`` of the answer); where: the environment the role was checked in.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from llmops_gateway.api.schemas.common import API_PREFIX
from llmops_gateway.domain.audit import AuditEntry, fitted
from llmops_gateway.security.access import Caller, Refusal
from llmops_shared.logging import get_logger

_log = get_logger(__name__)

AUDITED: Final = (API_PREFIX, "/console/")
"""The API, and the console's forms (sign-in, sign-out, replay) and refusals."""
READS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED: Final = frozenset({401, 403})
COLLECTIONS: Final = {
    "jobs": "training_job",
    "endpoints": "serving_endpoint",
    "models": "catalog_model",
    "datasets": "dataset",
    "versions": "dataset_version",
    "restores": "dataset_restore",
    "restore": "dataset_restore",
    "pipelines": "pipeline",
    "configs": "integration_config",
    "dlq": "dead_letter",
    "dead-letters": "dead_letter",
    "keys": "api_key",
    "audit": "audit_record",
    "lineage": "lineage",
}
"""A path segment naming a collection -> the kind of entity its members are."""
_PARAM = re.compile(r"^\{(\w+)\}$")
_CONVERTER = re.compile(r"\{(\w+):\w+\}")
"""A path parameter's converter (``{entity_id:path}``): the operation is named as OpenAPI does."""
_MAX_BODY = 65_536


def entity_of(template: str, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The kind of entity a route template addresses (its last collection) and the id its
    path gives (the parameters right after that collection, joined by ``/``)."""
    kind, ids = None, []
    for segment in template.removeprefix(API_PREFIX).strip("/").split("/"):
        param = _PARAM.match(segment)
        if param is not None:
            ids.append(str(params.get(param[1], "")))
        elif segment in COLLECTIONS:
            kind, ids = COLLECTIONS[segment], []
    return kind, "/".join(ids) or None


def outcome_of(status_code: int) -> str:
    if status_code in REFUSED:
        return "refused"
    return "succeeded" if status_code < 400 else "failed"


class AuditTrail:
    def __init__(self, app: ASGIApp, *, record: Callable[[AuditEntry], None]) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(AUDITED):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status_code = 500
        body = bytearray()
        audited = False
        started = False

        async def send_audited(message: Message) -> None:
            nonlocal status_code, audited, started
            if message["type"] == "http.response.start":
                started = True
                status_code = message["status"]
                audited = method not in READS or status_code in REFUSED
            elif message["type"] == "http.response.body" and audited:
                if len(body) < _MAX_BODY:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._write(scope, method, status_code, bytes(body))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:  # not a cancellation (a client gone is no outcome to record)
            if not started:  # an unexpected error: the 500 is sent further out; record it here
                await self._write(scope, method, 500, b"")
            raise

    async def _write(self, scope: AsgiScope, method: str, status_code: int, body: bytes) -> None:
        route = scope.get("route")
        template = _CONVERTER.sub(r"{\1}", getattr(route, "path", None) or "(unmatched)")
        kind, entity_id = entity_of(template, scope.get("path_params", {}))
        if entity_id is None and status_code < 300:
            entity_id = _created_id(body)
        state = scope.get("state", {})
        caller: Caller | None = state.get("caller")
        refusal: Refusal | None = state.get("refusal")
        entry = fitted(
            AuditEntry(
                actor=caller.principal.name if caller else refusal.claimed if refusal else None,
                actor_kind=caller.principal.kind if caller else "unauthenticated",
                operation=f"{method} {template.removeprefix(API_PREFIX)}",
                method=method,
                path=str(scope.get("path", "")),
                entity_kind=kind,
                entity_id=entity_id,
                environment=_environment(caller, scope),
                outcome=outcome_of(status_code),
                status_code=status_code,
                correlation_id=state.get("correlation_id"),
                note=caller.note if caller else refusal.reason if refusal else None,
            )
        )
        try:
            await asyncio.to_thread(self.record, entry)
        except Exception as exc:  # noqa: BLE001 - the answer stands; the loss is logged loudly
            _log.error("audit_write_failed", error=repr(exc), **vars(entry))


def _environment(caller: Caller | None, scope: AsgiScope) -> str | None:
    if caller is not None and caller.environment is not None:
        return caller.environment
    environment = scope.get("path_params", {}).get("environment")
    return str(environment) if environment is not None else None


def _created_id(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    value = document.get("id") if isinstance(document, dict) else None
    return str(value) if value is not None else None
