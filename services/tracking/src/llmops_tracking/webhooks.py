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

The routes are :mod:`~llmops_tracking.webhook_app`, the signatures
:mod:`~llmops_tracking.webhook_signing`, the payloads :mod:`~llmops_tracking.webhook_payloads`
and the webhook's registration in MLflow :mod:`~llmops_tracking.webhook_registration`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from pydantic import SecretStr, ValidationError

from llmops_shared.logging import get_logger
from llmops_shared.streams.errors import describe
from llmops_shared.streams.publisher import StatusSink
from llmops_tracking.model_versions import (
    ModelRegistry,
    PublishedVersions,
    RegistryUnavailable,
    delivery_key,
)
from llmops_tracking.webhook_payloads import (
    Delivery,
    VersionChange,
    VersionRef,
    error_text,
    first_error,
    interpret,
    version_envelope,
)
from llmops_tracking.webhook_signing import signature_matches

DELIVERY_ID_HEADER: Final = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER: Final = "X-MLflow-Timestamp"
SIGNATURE_HEADER: Final = "X-MLflow-Signature"
DELIVERY_TTL_S: Final = 86_400
MAX_BODY_BYTES: Final = 1024 * 1024
NOT_CONFIGURED: Final = "webhook receiver is not configured (MLFLOW_WEBHOOK_SECRET)"
_DELIVERY_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_log = get_logger(__name__)


class WebhookError(Exception):
    """Answer the delivery with ``status`` and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(kw_only=True, eq=False)
class WebhookReceiver:
    """Verifies, de-duplicates and publishes MLflow webhook deliveries.

    A service object, not a value: ``eq=False`` keeps identity equality (and hashing).
    """

    secret: SecretStr | None
    tolerance_s: int
    registry: ModelRegistry
    redis: aioredis.Redis
    publisher: StatusSink
    namespace: str
    clock: Callable[[], float] = time.time
    _published: PublishedVersions = field(init=False)

    def __post_init__(self) -> None:
        self._published = PublishedVersions(self.redis, self.namespace)

    async def receive(self, headers: Mapping[str, str], body: bytes) -> dict[str, object]:
        """Handle one delivery; raises :class:`WebhookError` for every non-200 answer."""
        delivery_id = self._verify(headers, body)
        delivery = self._parse(body)
        event = f"{delivery.entity}.{delivery.action}"
        log = _log.bind(delivery_id=delivery_id, mlflow_event=event)
        try:
            ref, change = interpret(event, delivery.data)
        except ValidationError as exc:
            raise WebhookError(400, f"invalid data for {event}: {first_error(exc)}") from exc
        if ref is None:
            log.info("mlflow_webhook_ignored")
            return {"ignored": True, "event": event}

        key = delivery_key(self.namespace, delivery_id)
        try:
            done = await self.redis.exists(key)
        except Exception as exc:
            log.warning("mlflow_webhook_redis_failed", error=describe(exc))
            raise WebhookError(503, f"cannot read the delivery state: {describe(exc)}") from exc
        if done:
            log.info("mlflow_webhook_duplicate")
            return {"duplicate": True, "delivery_id": delivery_id}
        result = await self._publish(ref, change, delivery_id, log)
        if "published" in result:
            try:  # only now: a crash before this costs a re-publish under the same event id
                await self.redis.set(key, event, ex=DELIVERY_TTL_S)
            except Exception as exc:  # noqa: BLE001 - the event is out; a retry repeats its id
                log.warning("mlflow_webhook_record_failed", error=describe(exc))
        return result

    # ------------------------------------------------------------------ steps

    def _verify(self, headers: Mapping[str, str], body: bytes) -> str:
        if self.secret is None:
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
        if abs(self.clock() - sent) > self.tolerance_s:
            raise WebhookError(
                401,
                f"{TIMESTAMP_HEADER} is more than {self.tolerance_s} s away from now "
                "(stale or replayed delivery, or clocks out of sync)",
            )
        if len(body) > MAX_BODY_BYTES:
            raise WebhookError(413, f"body larger than {MAX_BODY_BYTES} bytes")
        if not signature_matches(
            self.secret.get_secret_value(), delivery_id, timestamp, body, values[SIGNATURE_HEADER]
        ):
            raise WebhookError(401, f"{SIGNATURE_HEADER} does not match (wrong secret?)")
        if not _DELIVERY_ID.match(delivery_id):
            raise WebhookError(400, f"{DELIVERY_ID_HEADER} is not a delivery id")
        return delivery_id

    @staticmethod
    def _parse(body: bytes) -> Delivery:
        try:
            return Delivery.model_validate_json(body)
        except ValidationError as exc:
            raise WebhookError(400, f"not an MLflow webhook payload: {first_error(exc)}") from exc

    async def _publish(
        self, ref: VersionRef, change: VersionChange | None, delivery_id: str, log: Any
    ) -> dict[str, object]:
        try:
            record = await self.registry.get_version(ref.name, ref.version)
        except RegistryUnavailable as exc:
            log.warning("mlflow_webhook_registry_unavailable", error=str(exc))
            raise WebhookError(503, str(exc)) from exc
        if record is None:  # deleted since: nothing to sync
            log.info("mlflow_webhook_version_gone", model_version=f"{ref.name}/{ref.version}")
            return {"ignored": True, "reason": "the model version no longer exists"}
        try:
            envelope = version_envelope(record, change, delivery_id)
        except ValueError as exc:  # does not fit the event schema (odd source or run id)
            reason = f"model version {record.id} cannot be published: {error_text(exc)}"
            log.warning("mlflow_webhook_unpublishable", model_version=record.id, error=reason)
            return {"ignored": True, "reason": reason}
        try:
            await self.publisher.publish(envelope)
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
