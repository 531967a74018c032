"""Every PyGithub call of the ``github`` backend: bounded rate-limit waits, outages, auth errors.

Split out of :mod:`llmops_github_sync.adapters.github`, which decides what to read and write:
PyGithub's own retry is turned off (``retry=None``, it would sleep unbounded inside a worker
thread), so :class:`GithubCalls` honours ``Retry-After`` (else ``X-RateLimit-Reset``) up to a
bound in total and then raises :class:`DependencyUnavailableError`: the consumer pauses, nothing
is dead-lettered. ``401``/``403``, ``5xx`` after three tries and connection errors raise it too,
with a log line that names the cause (never the token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from github import GithubException

from llmops_github_sync.ports import DependencyUnavailableError
from llmops_shared.logging import get_logger

T = TypeVar("T")
_log = get_logger(__name__)
_SERVER_ERROR_TRIES = 3
_SECONDARY_WAIT_S = 60.0


@dataclass(kw_only=True, eq=False)
class GithubCalls:
    """Runs PyGithub calls for one repository (``full_name``, for log lines).

    A service object, not a value: ``eq=False`` keeps identity equality (and hashing).
    """

    base_url: str
    full_name: str
    auth_kind: str
    max_rate_limit_wait_s: float
    sleep: Callable[[float], None]

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one PyGithub call; wait out rate limits (bounded), map outages and auth errors."""
        waited = 0.0
        server_errors = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except GithubException as exc:
                wait = rate_limit_wait(exc)
                if wait is not None:
                    if waited + wait > self.max_rate_limit_wait_s:
                        _log.warning(
                            "github_rate_limited",
                            wait_s=round(wait, 2),
                            waited_s=round(waited, 2),
                            bound_s=self.max_rate_limit_wait_s,
                        )
                        raise DependencyUnavailableError(
                            f"GitHub rate limit: asked to wait {wait:.0f}s, beyond the "
                            f"{self.max_rate_limit_wait_s:.0f}s bound"
                        ) from None
                    _log.info("github_rate_limit_wait", wait_s=round(wait, 2))
                    self.sleep(wait)
                    waited += wait
                    continue
                if exc.status in (401, 403):
                    what = "credentials" if exc.status == 401 else "permissions"
                    _log.error(
                        "github_auth_failed",
                        status=exc.status,
                        auth=self.auth_kind,
                        repository=self.full_name,
                        hint=f"check the {what} of the GitHub token or App "
                        "(contents: write, pull requests: write)",
                    )
                    raise DependencyUnavailableError(
                        f"GitHub refused the {self.auth_kind} ({exc.status}): check its {what}"
                    ) from None
                if exc.status >= 500:
                    server_errors += 1
                    if server_errors >= _SERVER_ERROR_TRIES:
                        raise DependencyUnavailableError(
                            f"GitHub answered {exc.status} {server_errors} times"
                        ) from None
                    self.sleep(0.5 * server_errors)
                    continue
                raise
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise DependencyUnavailableError(
                    f"GitHub at {self.base_url} is unreachable: {type(exc).__name__}"
                ) from None


def rate_limit_wait(exc: GithubException, now: datetime | None = None) -> float | None:
    """Seconds to wait before retrying, when ``exc`` is a rate limit; None otherwise."""
    if exc.status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    message = ""
    if isinstance(exc.data, dict):
        message = str(exc.data.get("message") or "").lower()
    limited = (
        exc.status == 429
        or "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message
    )
    if not limited:
        return None
    if (after := headers.get("retry-after")) is not None:
        try:
            return max(float(after), 0.0)
        except ValueError:
            pass
    if (reset := headers.get("x-ratelimit-reset")) is not None:
        try:
            moment = datetime.fromtimestamp(int(reset), UTC)
        except ValueError:
            pass
        else:
            delta = (moment - (now or datetime.now(UTC))).total_seconds()
            return max(delta, 0.0) + 1.0
    return _SECONDARY_WAIT_S
