"""A TEST DOUBLE of an OpenLineage server (Marquez's ``POST /api/v1/lineage``) that checks every
event against the official OpenLineage JSON Schemas before it accepts it.

The schemas are the upstream copies under ``tests/fixtures/openlineage`` (see its README). A
``referencing`` registry maps each schema's ``$id`` to its local copy, so the
``https://openlineage.io/spec/...`` references resolve without any network. An event must be a
valid ``RunEvent`` of the core schema, and each facet in it (run, job, dataset, input and
output facets) must validate against the schema its ``_schemaURL`` names and sit under the key
that schema defines it for; a facet whose schema is not among the local copies is refused.
Formats are checked (``date-time``, ``uuid``, and ``uri`` as an absolute URI: a scheme, no
spaces).

Accepted events are recorded (``events``) and answered 200; invalid ones 400 with the errors
(also kept, ``rejected``). :meth:`OpenLineageReceiver.fail_next` makes the next requests fail
with a status of choice, to test retries.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from support.http_double import DoubleHandler, HttpDouble, bound_handler

SCHEMAS: Final = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage"
CORE_ID: Final = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
LINEAGE_PATH: Final = "/api/v1/lineage"

_ABSOLUTE_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
_FACET_GROUPS: Final = ("facets", "inputFacets", "outputFacets")


def _format_checker() -> jsonschema.FormatChecker:
    """The draft's format checks, with ``uri`` (RFC 3986 absolute URI: scheme ":" rest, no
    whitespace) added: jsonschema checks it only with an optional package this suite lacks."""
    checker = jsonschema.FormatChecker()

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        return not isinstance(value, str) or bool(_ABSOLUTE_URI.match(value))

    return checker


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    """Every local schema by its ``$id``."""
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMAS.rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        documents[document["$id"]] = document
    return documents


@functools.cache
def registry() -> Registry[Any]:
    """The local schemas, each under its ``$id``."""
    resources = [
        (uri, Resource.from_contents(document, default_specification=DRAFT202012))
        for uri, document in _documents().items()
    ]
    return Registry().with_resources(resources)


@functools.cache
def _validator(ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": ref}, registry=registry(), format_checker=_format_checker()
    )


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, key, facet) for every facet of the event."""
    holders: list[tuple[str, Any]] = [("run", event.get("run")), ("job", event.get("job"))]
    for side in ("inputs", "outputs"):
        for index, dataset in enumerate(event.get(side) or []):
            holders.append((f"{side}[{index}]", dataset))
    for where, holder in holders:
        if not isinstance(holder, dict):
            continue
        for group in _FACET_GROUPS:
            for key, facet in (holder.get(group) or {}).items():
                yield f"{where}.{group}", key, facet


def _facet_errors(where: str, key: str, facet: Any) -> list[str]:
    """Why ``facet`` (under ``key``) does not match the schema its ``_schemaURL`` names."""
    url = facet.get("_schemaURL") if isinstance(facet, dict) else None
    if not isinstance(url, str) or "#" not in url:
        return [f"{where}.{key}: no _schemaURL with a fragment"]
    document_id, _, pointer = url.partition("#")
    document = _documents().get(document_id)
    if document is None:
        return [f"{where}.{key}: no local schema for {document_id}"]
    errors = [
        f"{where}.{key}: {error.message} (at {list(error.absolute_path)})"
        for error in _validator(url).iter_errors(facet)
    ]
    declared = document.get("properties", {}).get(key, {}).get("$ref")
    if declared != f"#{pointer}":
        errors.append(f"{where}.{key}: {document_id} defines no facet {key!r} as #{pointer}")
    return errors


def event_errors(event: Any) -> list[str]:
    """Every reason ``event`` is not a valid OpenLineage run event (empty when it is)."""
    errors = [
        f"{error.message} (at {list(error.absolute_path)})"
        for error in _validator(f"{CORE_ID}#/$defs/RunEvent").iter_errors(event)
    ]
    if not errors:  # the root's oneOf says only "not valid under any" about a bad RunEvent
        errors = [
            f"core schema: {error.message[:300]}"
            for error in _validator(CORE_ID).iter_errors(event)
        ]
    if isinstance(event, dict):
        for where, key, facet in _facets(event):
            errors += _facet_errors(where, key, facet)
    return errors


class OpenLineageReceiver(HttpDouble):
    """The double: ``url`` is its base URL (what ``OPENLINEAGE_URL`` takes)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.rejected: list[tuple[Any, list[str]]] = []
        self.authorizations: list[str | None] = []
        self.requests = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_LineageHandler, receiver=self)

    def fail_next(self, times: int, status: int = 503) -> None:
        """Answer the next ``times`` requests ``status`` without looking at them."""
        with self._lock:
            self._failures.extend([status] * times)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The accepted events of ``event_type``, in the order received."""
        with self._lock:
            return [event for event in self.events if event.get("eventType") == event_type]

    def receive(self, body: bytes, authorization: str | None) -> tuple[int, Any]:
        """The answer to one POST: a forced failure, 400 with the errors, or 200."""
        with self._lock:
            self.requests += 1
            self.authorizations.append(authorization)
            if self._failures:
                return self._failures.pop(0), {"error": "failing as told"}
        try:
            event = json.loads(body)
        except ValueError as exc:
            errors = [f"not JSON: {exc}"]
            event = None
        else:
            errors = event_errors(event)
        with self._lock:
            if errors:
                self.rejected.append((event, errors))
                return 400, {"errors": errors}
            self.events.append(event)
        return 200, {}


class _LineageHandler(DoubleHandler):
    receiver: OpenLineageReceiver

    def do_POST(self) -> None:
        body = self.read_body()
        if self.path.split("?")[0] != LINEAGE_PATH:
            self.send_json(404, {"error": f"no route {self.path}"})
            return
        status, answer = self.receiver.receive(body, self.headers.get("Authorization"))
        self.send_json(status, answer)
