"""MLflow's failures in the tracking service's terms: unavailable, a server error, or rejected.

Split out of :mod:`llmops_tracking.adapters.mlflow`, which makes the calls; both that backend
and the model registry adapter (:mod:`llmops_tracking.adapters.mlflow_registry`) classify
MLflow's exceptions here, and scrub credentials out of its messages.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

import requests
from mlflow.exceptions import InvalidUrlException, MlflowException, RestException
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError, ResponseError

from llmops_shared.streams.connection import redact_url
from llmops_tracking.ports import TrackingRejected, TrackingUnavailable

_UNAVAILABLE_CODES: Final = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "DEADLINE_EXCEEDED",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "CUSTOMER_UNAUTHORIZED",
        "ENDPOINT_NOT_FOUND",  # the URI points at something that is not MLflow: configuration
    }
)
_UNAVAILABLE_STATUSES: Final = frozenset({401, 403, 408, 429, 502, 503, 504})
_RETRIED_STATUS: Final = re.compile(r"too many (\d{3}) error responses")


class MlflowServerError(RuntimeError):
    """MLflow answered 5xx to one request while its health check passes: retried, counted."""


async def translate(
    exc: MlflowException, action: str, *, uri: str, answers: Callable[[], Awaitable[bool]]
) -> Exception:
    """The exception the consumer runtime gets for ``exc`` (``exc`` itself when unknown);
    ``answers`` tells whether MLflow serves a trivial request right now (after a 5xx)."""
    status = _status_retried_on(exc)
    if status is None:
        if isinstance(exc, InvalidUrlException) or _transport_failure(exc):
            return TrackingUnavailable(unavailable_message(action, exc, uri))
        if str(exc.error_code) in _UNAVAILABLE_CODES:
            return TrackingUnavailable(unavailable_message(action, exc, uri))
        status = int(exc.get_http_status_code())  # type: ignore[no-untyped-call]
    if status in _UNAVAILABLE_STATUSES:
        return TrackingUnavailable(unavailable_message(action, exc, uri))
    if status >= 500:
        if await answers():
            return MlflowServerError(f"MLflow failed while {action}: {message(exc, uri)}")
        return TrackingUnavailable(unavailable_message(action, exc, uri))
    if 400 <= status < 500 and (
        isinstance(exc, RestException) or exc.error_code != "INTERNAL_ERROR"
    ):
        return TrackingRejected(f"MLflow rejected {action}: {message(exc, uri)}")
    return exc


def unavailable_message(action: str, exc: BaseException, uri: str) -> str:
    return f"MLflow at {redact_url(uri)} unavailable while {action}: {message(exc, uri)}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions behind ``exc`` (MLflow wraps transport errors without ``from``)."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def _transport_failure(exc: BaseException) -> bool:
    """The request never got an HTTP answer: refused, reset, timed out, DNS, TLS."""
    return any(
        isinstance(c, requests.RequestException | Urllib3HTTPError | OSError) for c in _causes(exc)
    )


def _status_retried_on(exc: BaseException) -> int | None:
    """The HTTP status urllib3 gave up on, if that is what failed.

    For 408/429/5xx MLflow's client lets urllib3 retry (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
    times, possibly 0), which then raises "too many <status> error responses" instead of
    returning the response: an HTTP answer disguised as a transport error.
    """
    for cause in _causes(exc):
        if isinstance(cause, MaxRetryError) and isinstance(cause.reason, ResponseError):
            found = _RETRIED_STATUS.search(str(cause.reason))
            return int(found.group(1)) if found else 500
    return None


def message(exc: BaseException, uri: str | None = None) -> str:
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return " ".join(scrub(str(text), uri).split())[:1000]


_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/@]+)@")


def scrub(text: str, uri: str | None = None) -> str:
    """``text`` without credentials: MLflow's messages quote the tracking URI it called
    (``http://user:pass@host/api/2.0/...``). ``uri`` itself is replaced by
    :func:`~llmops_shared.streams.connection.redact_url` of it, and the password of any other
    ``scheme://user:pass@`` in the text by ``***``."""
    if uri:
        text = text.replace(uri, redact_url(uri))
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['userinfo'].split(':', 1)[0]}:***@", text)


def is_transient(exc: BaseException) -> bool:
    """Whether MLflow failed as a whole (no answer, a retried 408/429/5xx, 5xx, overloaded,
    unauthenticated, not MLflow at all) rather than refusing this one request (not found,
    permission denied on one run, an invalid parameter): the former is retried later, the
    latter concerns only the object asked for."""
    if not isinstance(exc, MlflowException):
        return isinstance(exc, requests.RequestException | Urllib3HTTPError | OSError)
    if _status_retried_on(exc) is not None:
        return True
    if isinstance(exc, InvalidUrlException) or _transport_failure(exc):
        return True
    if str(exc.error_code) in _UNAVAILABLE_CODES - {"PERMISSION_DENIED", "CUSTOMER_UNAUTHORIZED"}:
        return True
    status = int(exc.get_http_status_code())  # type: ignore[no-untyped-call]
    return status >= 500 or status in _UNAVAILABLE_STATUSES - {403}
