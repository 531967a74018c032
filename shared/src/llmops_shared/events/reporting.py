"""The one way a worker builds a status event: a clipped reason, the payload, the envelope.

Every worker reports on ``llmops.status`` the same way (its own name as ``reporter`` and as the
envelope's ``source``, the correlation id of the event it handles), so the envelope is built
here once instead of in each service: :func:`status_event` for any report, :func:`reply_status`
for the report about an event being handled (a worker binds its entity and name with
``functools.partial``). It lives apart from ``payloads/status.py`` because the
envelope factory (``codec``) imports the payload registry, which imports the payloads.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from llmops_shared.events.codec import new_event
from llmops_shared.events.envelope import Envelope, Event
from llmops_shared.events.payloads.details import ReportDetails
from llmops_shared.events.payloads.status import Phase, StatusEntity, clip_reason, status_updated


def status_event(
    entity: StatusEntity | str,
    *,
    entity_id: str,
    phase: Phase | str,
    reporter: str,
    correlation_id: str | None,
    reason: str | None = None,
    details: ReportDetails | Mapping[str, JsonValue] | None = None,
    seq: int | None = None,
) -> Envelope:
    """The status event ``reporter`` publishes about ``entity_id``, ready to publish or return.

    ``reason`` goes through :func:`clip_reason` (one line, at most 2,000 characters, blank is
    ``None``), because reporters pass exception and API messages straight through and an
    over-long reason must not make the report itself invalid. ``seq`` defaults to now (see
    :func:`status_updated`); ``correlation_id`` is the handled event's, ``None`` for reports
    nothing asked for (a watcher noticing a change).
    """
    payload = status_updated(
        entity,
        entity_id=entity_id,
        phase=phase,
        reporter=reporter,
        reason=clip_reason(reason),
        details=details,
        seq=seq,
    )
    return new_event(payload, source=reporter, correlation_id=correlation_id)


def reply_status(
    entity: StatusEntity | str,
    event: Event,
    entity_id: str,
    phase: Phase | str,
    *,
    reporter: str,
    reason: str | None = None,
    details: ReportDetails | Mapping[str, JsonValue] | None = None,
    seq: int | None = None,
) -> Envelope:
    """The status event ``reporter`` answers the handled ``event`` with: :func:`status_event`
    correlated with ``event`` (its envelope's ``correlationid``).

    ``entity`` comes first, as in :func:`status_event`, so a worker binds it and its name once
    (``partial(reply_status, StatusEntity.MODEL, reporter="registry")``) and its handlers say
    only what differs: ``reply(event, model_id, Phase.FAILED, reason=...)``.
    """
    return status_event(
        entity,
        entity_id=entity_id,
        phase=phase,
        reporter=reporter,
        correlation_id=event.envelope.correlationid,
        reason=reason,
        details=details,
        seq=seq,
    )
