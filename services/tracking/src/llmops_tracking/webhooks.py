"""The MLflow webhook receiver: ``POST /mlflow/webhook`` -> ``llmops.models`` events.

MLflow (3.x, SQL store) POSTs ``{"entity", "action", "timestamp", "data"}`` with the headers
``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (unix seconds) and ``X-MLflow-Signature``
(``v1,`` + base64 HMAC-SHA256 of ``"{delivery_id}.{timestamp}.{raw body}"`` under the webhook's
secret). A delivery is answered:

* 503 while the receiver is not configured or experiment tracking is not on MLflow;
* 401 when a header is missing, the timestamp is outside ``MLFLOW_WEBHOOK_TOLERANCE_S`` of now
  (replay protection) or the signature does not match (compared in constant time);
* 413 when the body is over 1 MiB (``Content-Length`` checked first, the body read with a cap);
* 400 when the signed body is not a webhook payload;
* 200 ``{"ignored": true}`` for entities/actions this service does not handle (prompts...), a
  version that no longer exists, or one that cannot be expressed as an event (``reason``);
* 200 ``{"duplicate": true}`` for a delivery id whose event was published (remembered 24 h);
* 503 when MLflow or Redis cannot be reached: MLflow retries, and the poller catches up
  whatever a lost delivery did not publish;
* 200 ``{"published": <event id>}`` otherwise.

A delivery id is recorded only *after* its event is on the stream. Event ids are deterministic
and consumers idempotent, so two attempts of one delivery racing (MLflow retrying after its
30 s timeout while the first attempt still runs), or a retry after a crash between publishing
and recording, publish the same event id twice at worst, and nothing is ever lost to a claim
left behind.

The payload of every event is read back from MLflow (source, run, creation time, aliases,
tags, the run's experiment), not copied from the delivery: the delivery carries less, and a
retried delivery then publishes the version's current state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from starlette.requests import ClientDisconnect

from llmops_shared.events import Envelope
from llmops_shared.logging import get_logger
from llmops_shared.streams.connection import redact_url
from llmops_shared.streams.errors import describe
from llmops_shared.streams.publisher import StatusSink
from llmops_tracking.model_versions import (
    Change,
    ModelRegistry,
    ModelVersionRecord,
    PublishedVersions,
    RegistryUnavailable,
    changed_event,
    delivery_key,
    registered_event,
)

WEBHOOK_PATH: Final = "/mlflow/webhook"
POLLER_PATH: Final = "/mlflow/poller"
DELIVERY_ID_HEADER: Final = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER: Final = "X-MLflow-Timestamp"
SIGNATURE_HEADER: Final = "X-MLflow-Signature"
SIGNATURE_VERSION: Final = "v1"
DELIVERY_TTL_S: Final = 86_400
MAX_BODY_BYTES: Final = 1024 * 1024
NOT_CONFIGURED: Final = "webhook receiver is not configured (MLFLOW_WEBHOOK_SECRET)"
_DELIVERY_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_log = get_logger(__name__)


# ---------------------------------------------------------------------- signatures


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's ``X-MLflow-Signature`` value for a delivery (``v1,<base64>``)."""
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_matches(
    secret: str, delivery_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """Whether any ``v1,<sig>`` in ``header`` (space-separated, Standard Webhooks style) is
    the HMAC of this delivery; compared in constant time."""
    expected = base64.b64decode(sign(secret, delivery_id, timestamp, body).split(",", 1)[1])
    matched = False
    for candidate in header.split():
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(given, expected)
    return matched


# ---------------------------------------------------------------------- payloads


class _Delivery(BaseModel):
    entity: str
    action: str
    timestamp: str | None = None
    data: dict[str, Any]


class _VersionRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _AliasCreated(_VersionRef):
    alias: str = Field(min_length=1)


class _TagSet(_VersionRef):
    key: str = Field(min_length=1)
    value: str


class WebhookError(Exception):
    """Answer the delivery with ``status`` and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class _Change:
    change: Change
    key: str
    value: str | None


class WebhookReceiver:
    """Verifies, de-duplicates and publishes MLflow webhook deliveries."""

    def __init__(
        self,
        *,
        secret: SecretStr | None,
        tolerance_s: int,
        registry: ModelRegistry,
        redis: aioredis.Redis,
        publisher: StatusSink,
        namespace: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._registry = registry
        self._redis = redis
        self._publisher = publisher
        self._namespace = namespace
        self._published = PublishedVersions(redis, namespace)
        self._clock = clock

    async def receive(self, headers: Mapping[str, str], body: bytes) -> dict[str, object]:
        """Handle one delivery; raises :class:`WebhookError` for every non-200 answer."""
        delivery_id = self._verify(headers, body)
        delivery = self._parse(body)
        event = f"{delivery.entity}.{delivery.action}"
        log = _log.bind(delivery_id=delivery_id, mlflow_event=event)
        try:
            ref, change = _interpret(event, delivery.data)
        except ValidationError as exc:
            raise WebhookError(400, f"invalid data for {event}: {_first_error(exc)}") from exc
        if ref is None:
            log.info("mlflow_webhook_ignored")
            return {"ignored": True, "event": event}

        key = delivery_key(self._namespace, delivery_id)
        try:
            done = await self._redis.exists(key)
        except Exception as exc:
            log.warning("mlflow_webhook_redis_failed", error=describe(exc))
            raise WebhookError(503, f"cannot read the delivery state: {describe(exc)}") from exc
        if done:
            log.info("mlflow_webhook_duplicate")
            return {"duplicate": True, "delivery_id": delivery_id}
        result = await self._publish(ref, change, delivery_id, log)
        if "published" in result:
            try:  # only now: a crash before this costs a re-publish under the same event id
                await self._redis.set(key, event, ex=DELIVERY_TTL_S)
            except Exception as exc:  # noqa: BLE001 - the event is out; a retry repeats its id
                log.warning("mlflow_webhook_record_failed", error=describe(exc))
        return result

    # ------------------------------------------------------------------ steps

    def _verify(self, headers: Mapping[str, str], body: bytes) -> str:
        if self._secret is None:
            raise WebhookError(503, NOT_CONFIGURED)
        values = {}
        for name in (DELIVERY_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
            value = headers.get(name)
            if not value:
                raise WebhookError(401, f"missing header {name}")
            values[name] = value.strip()
        delivery_id, timestamp = values[DELIVERY_ID_HEADER], values[TIMESTAMP_HEADER]
        try:
            sent = int(timestamp)
        except ValueError:
            raise WebhookError(401, f"{TIMESTAMP_HEADER} is not unix seconds") from None
        if abs(self._clock() - sent) > self._tolerance_s:
            raise WebhookError(
                401,
                f"{TIMESTAMP_HEADER} is more than {self._tolerance_s} s away from now "
                "(stale or replayed delivery, or clocks out of sync)",
            )
        if len(body) > MAX_BODY_BYTES:
            raise WebhookError(413, f"body larger than {MAX_BODY_BYTES} bytes")
        if not signature_matches(
            self._secret.get_secret_value(), delivery_id, timestamp, body, values[SIGNATURE_HEADER]
        ):
            raise WebhookError(401, f"{SIGNATURE_HEADER} does not match (wrong secret?)")
        if not _DELIVERY_ID.match(delivery_id):
            raise WebhookError(400, f"{DELIVERY_ID_HEADER} is not a delivery id")
        return delivery_id

    @staticmethod
    def _parse(body: bytes) -> _Delivery:
        try:
            return _Delivery.model_validate_json(body)
        except ValidationError as exc:
            raise WebhookError(400, f"not an MLflow webhook payload: {_first_error(exc)}") from exc

    async def _publish(
        self, ref: _VersionRef, change: _Change | None, delivery_id: str, log: Any
    ) -> dict[str, object]:
        try:
            record = await self._registry.get_version(ref.name, ref.version)
        except RegistryUnavailable as exc:
            log.warning("mlflow_webhook_registry_unavailable", error=str(exc))
            raise WebhookError(503, str(exc)) from exc
        if record is None:  # deleted since: nothing to sync
            log.info("mlflow_webhook_version_gone", model_version=f"{ref.name}/{ref.version}")
            return {"ignored": True, "reason": "the model version no longer exists"}
        try:
            envelope = _envelope(record, change, delivery_id)
        except ValueError as exc:  # does not fit the event schema (odd source or run id)
            reason = f"model version {record.id} cannot be published: {_reason(exc)}"
            log.warning("mlflow_webhook_unpublishable", model_version=record.id, error=reason)
            return {"ignored": True, "reason": reason}
        try:
            await self._publisher.publish(envelope)
        except Exception as exc:
            log.warning("mlflow_webhook_publish_failed", error=describe(exc))
            raise WebhookError(503, f"cannot publish the event: {describe(exc)}") from exc
        if change is None:
            try:  # the poller need not send it again; losing this only costs a duplicate
                await self._published.add([record])
            except Exception as exc:  # noqa: BLE001
                log.warning("mlflow_webhook_mark_failed", error=describe(exc))
        log.info(
            "mlflow_webhook_published",
            model_version=record.id,
            event_id=envelope.id,
            event_type=envelope.type,
        )
        return {"published": envelope.id, "type": envelope.type, "subject": envelope.subject}


def _interpret(event: str, data: dict[str, Any]) -> tuple[_VersionRef | None, _Change | None]:
    if event == "model_version.created":
        return _VersionRef.model_validate(data), None
    if event == "model_version_alias.created":
        alias = _AliasCreated.model_validate(data)
        return alias, _Change("alias_created", alias.alias, None)
    if event == "model_version_tag.set":
        tag = _TagSet.model_validate(data)
        return tag, _Change("tag_set", tag.key, tag.value)
    return None, None


def _envelope(record: ModelVersionRecord, change: _Change | None, delivery_id: str) -> Envelope:
    if change is None:
        return registered_event(record, correlation_id=delivery_id)
    return changed_event(record, change.change, change.key, change.value, delivery_id=delivery_id)


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return _first_error(exc)
    return " ".join(str(exc).split())[:500]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ())) or "body"
    return f"{where}: {error.get('msg')}"


# ---------------------------------------------------------------------- the HTTP app


def build_webhook_app(
    receiver: WebhookReceiver | None,
    *,
    poller_status: Callable[[], dict[str, object]] | None,
    disabled_reason: str | None = None,
) -> FastAPI:
    """The tracking service's own HTTP API, served on its health port.

    ``receiver`` and ``poller_status`` are ``None`` when experiment tracking does not use
    MLflow; the routes then answer 503 with ``disabled_reason``.
    """
    app = FastAPI(title="llmops tracking", docs_url=None, redoc_url=None, openapi_url=None)
    reason = disabled_reason or "model-version events need experiment tracking on MLflow"

    @app.post(WEBHOOK_PATH)
    async def mlflow_webhook(request: Request) -> JSONResponse:
        if receiver is None:
            return JSONResponse({"detail": reason}, status_code=503)
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
            result = await receiver.receive(request.headers, body)
        except WebhookError as exc:
            if exc.status in (401, 400, 413):
                _log.warning("mlflow_webhook_refused", status=exc.status, detail=exc.detail)
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        return JSONResponse(result)

    @app.get(POLLER_PATH)
    async def poller() -> JSONResponse:
        if poller_status is None:
            return JSONResponse({"detail": reason}, status_code=503)
        return JSONResponse(poller_status())

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is over ``limit`` bytes: a declared
    ``Content-Length`` before reading anything, then while streaming (chunked bodies)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise WebhookError(400, "Content-Length is not a number") from None
        if size > limit:
            raise WebhookError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise WebhookError(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise WebhookError(400, "the client went away before sending the body") from None
    return b"".join(chunks)


# ---------------------------------------------------------------------- registration


class WebhookRegistrar(Protocol):
    """Creates or updates the MLflow webhook (the MLflow registry adapter is one)."""

    async def ensure_webhook(self, *, name: str, url: str, secret: str) -> str: ...


async def register_webhook(
    registrar: WebhookRegistrar,
    *,
    name: str,
    url: str,
    secret: SecretStr,
    stop: asyncio.Event,
    initial_backoff_s: float = 1.0,
    max_backoff_s: float = 300.0,
) -> None:
    """Make sure MLflow calls ``url``; retried with a growing backoff while MLflow is down.

    Returns once done (or on ``stop``); a start-up task, not a watcher: the worker runs on
    without it, and the poller publishes what webhooks would have.
    """
    delay = initial_backoff_s
    log = _log.bind(webhook=name, url=redact_url(url))
    while not stop.is_set():
        try:
            outcome = await registrar.ensure_webhook(
                name=name, url=url, secret=secret.get_secret_value()
            )
        except RegistryUnavailable as exc:
            log.warning("mlflow_webhook_registration_failed", error=str(exc), retry_in_s=delay)
        else:
            log.info("mlflow_webhook_registered", outcome=outcome)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, max_backoff_s)
