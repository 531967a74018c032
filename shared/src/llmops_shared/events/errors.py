"""The one error decoding raises, and how validation errors become its short reason."""

from __future__ import annotations

from typing import Final

from pydantic import ValidationError

MAX_REASON_LENGTH: Final = 1000
_MAX_LISTED_ERRORS: Final = 3


class EventDecodeError(ValueError):
    """An entry that is not a valid event for this consumer; retrying it cannot help.

    ``reason`` is short and names the field at fault; the streams runtime writes it into the
    dead-letter entry. ``event_id`` and ``event_type`` are set when the envelope itself was
    readable, for logs.
    """

    def __init__(
        self, reason: str, *, event_id: str | None = None, event_type: str | None = None
    ) -> None:
        if len(reason) > MAX_REASON_LENGTH:
            reason = reason[: MAX_REASON_LENGTH - 3] + "..."
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


def describe_validation_error(exc: ValidationError, *, prefix: str | None = None) -> str:
    """``loc: message`` for the first few errors, ``; ``-joined, with a count of the rest.

    ``prefix`` is prepended to each location (``data`` for payload errors) so the path reads as
    a path into the whole event.
    """
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    parts: list[str] = []
    for error in errors[:_MAX_LISTED_ERRORS]:
        loc = ".".join(str(part) for part in error["loc"])
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    text = "; ".join(parts)
    if len(errors) > _MAX_LISTED_ERRORS:
        text += f" (+{len(errors) - _MAX_LISTED_ERRORS} more)"
    return text
