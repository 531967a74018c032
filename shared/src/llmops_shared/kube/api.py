"""Calling the Kubernetes API from a worker: the client, a thread, and the runtime's errors.

The serving and workflow workers both drive the cluster through the synchronous ``kubernetes``
client. Calls run in a worker thread so the consumer's event loop (and its health server) keeps
answering, and every failure becomes one of the two errors the consumer runtime acts on:

* no HTTP answer (refused, reset, DNS, TLS, timeout), 408, 429, 5xx, and 401/403 (credentials or
  RBAC: configuration the operator must fix; dead-lettering every event meanwhile would be
  worse) -> the service's *unavailable* error, a ``DependencyUnavailableError`` (the entry stays
  pending, the consumer pauses);
* any other 4xx (the API refused the object: schema, admission webhook, missing CRD) -> the
  service's *rejected* error, a ``NonRetryableError`` with the API's own message;
* 404 is re-raised as is with ``absent_ok`` where "absent" is an answer (read, delete, list).

Each worker makes one :class:`KubeCalls` with its own two errors;
:mod:`llmops_shared.kube.resources` builds on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

T = TypeVar("T")

_UNAVAILABLE: Final = frozenset({401, 403, 408, 429})
NOT_FOUND: Final = 404
CONFLICT: Final = 409

APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
"""A ``PATCH`` with this body is a server-side apply."""
MERGE_PATCH_CONTENT_TYPE: Final = "application/merge-patch+json"


def api_client_from_config(
    kubeconfig: str | None = None, context: str | None = None
) -> client.ApiClient:
    """An ``ApiClient`` from ``kubeconfig`` (if given), else in-cluster, else ``~/.kube/config``.

    Called by a service's ``app.py`` only, at start-up: importing connects to nothing.
    """
    if kubeconfig:
        return cast(
            client.ApiClient,
            config.new_client_from_config(config_file=kubeconfig, context=context),  # type: ignore[no-untyped-call]
        )
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except ConfigException:
        return cast(client.ApiClient, config.new_client_from_config(context=context))  # type: ignore[no-untyped-call]
    return client.ApiClient()


def api_message(exc: ApiException) -> str:
    """The ``message`` of the API's Status body, else the HTTP reason."""
    body = exc.body
    if body:
        try:
            status = json.loads(body)
        except (TypeError, ValueError):
            return " ".join(str(body).split())[:1000]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return f"{exc.status} {exc.reason}"


def is_not_found(exc: BaseException) -> bool:
    """A 404 from the API (the object, or its namespace, does not exist)."""
    return isinstance(exc, ApiException) and exc.status == NOT_FOUND


def is_conflict(exc: BaseException) -> bool:
    """A 409 from the API (already exists, or a precondition failed), as raised or as the cause
    of the service's rejection."""
    return any(isinstance(e, ApiException) and e.status == CONFLICT for e in (exc, exc.__cause__))


@dataclass(frozen=True)
class KubeCalls:
    """API calls that fail with one service's own error classes."""

    unavailable: Callable[[str], Exception]
    rejected: Callable[[str], Exception]

    def translate(self, exc: ApiException, action: str) -> Exception:
        """The runtime's error for an API failure while doing ``action``."""
        status = int(exc.status or 0)
        message = api_message(exc)
        if status == 0 or status >= 500 or status in _UNAVAILABLE:
            return self.unavailable(f"Kubernetes API unavailable while {action}: {message}")
        return self.rejected(f"Kubernetes API rejected {action}: {message}")

    async def call(
        self, action: str, fn: Callable[..., T], *args: Any, absent_ok: bool = False, **kwargs: Any
    ) -> T:
        """Run ``fn`` in a thread and translate its failures; with ``absent_ok`` a 404 is
        re-raised as is (the caller treats "absent" as an answer), else it is a rejection (a
        missing namespace or CRD on apply)."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as exc:
            if exc.status == NOT_FOUND and absent_ok:
                raise
            raise self.translate(exc, action) from exc
        except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
            raise self.unavailable(
                f"Kubernetes API unreachable while {action}: {type(exc).__name__}: {exc}"
            ) from exc
