"""What the cluster backends share: building the API client, calling it off the event loop,
and translating its failures for the consumer runtime (the serving worker's rules).

The ``kubernetes`` client is synchronous; calls run in a worker thread so the consumer's event
loop (and its health server) keeps answering. Failures:

* no HTTP answer (refused, reset, DNS, TLS, timeout), 408, 429, 5xx, and 401/403 (credentials
  or RBAC: configuration the operator must fix; dead-lettering every event meanwhile would be
  worse) -> :class:`WorkflowUnavailable` (the entry stays pending, the consumer pauses);
* any other 4xx (the API refused the object: schema, admission webhook, missing CRD) ->
  :class:`WorkflowRejected` with the API's own message (reported Failed, dead-lettered);
* 404 is re-raised to the caller where "absent" is an answer (terminate, list).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from llmops_workflow.ports import Live, WorkflowRejected, WorkflowUnavailable
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed

T = TypeVar("T")

_UNAVAILABLE: Final = frozenset({401, 403, 408, 429})
NOT_FOUND: Final = 404
APPLY_CONTENT_TYPE: Final = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE: Final = "application/merge-patch+json"


def api_client_from_config(
    kubeconfig: str | None = None, context: str | None = None
) -> client.ApiClient:
    """An ``ApiClient`` from ``kubeconfig`` (if given), else in-cluster, else ``~/.kube/config``.

    Called by ``app.py`` only, at start-up: importing the package connects to nothing.
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


def translate(exc: ApiException, action: str) -> Exception:
    """The runtime's error for an API failure while doing ``action``."""
    status = int(exc.status or 0)
    message = api_message(exc)
    if status == 0 or status >= 500 or status in _UNAVAILABLE:
        return WorkflowUnavailable(f"Kubernetes API unavailable while {action}: {message}")
    return WorkflowRejected(f"Kubernetes API rejected {action}: {message}")


async def call(
    action: str, fn: Callable[..., T], *args: Any, absent_ok: bool = False, **kwargs: Any
) -> T:
    """Run ``fn`` in a thread and translate its failures; with ``absent_ok`` a 404 is
    re-raised as is (the caller treats "absent" as an answer), else it is a rejection (a
    missing namespace or CRD on apply)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ApiException as exc:
        if exc.status == NOT_FOUND and absent_ok:
            raise
        raise translate(exc, action) from exc
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        raise WorkflowUnavailable(
            f"Kubernetes API unreachable while {action}: {type(exc).__name__}: {exc}"
        ) from exc


def desired_from_live(obj: dict[str, Any]) -> dict[str, Any]:
    """The applied part of a live object: identity, our labels and annotations, spec.

    Status, managedFields, resourceVersion and labels others added (Argo adds
    ``workflows.argoproj.io/*``) are dropped, so the manifest reported to the gateway is the
    one this worker rendered (plus ``spec.shutdown`` when it was terminated).
    """
    meta = obj.get("metadata") or {}

    def ours(values: dict[str, str] | None) -> dict[str, str]:
        return {
            k: v
            for k, v in (values or {}).items()
            if k.startswith(names.PREFIX) or k.startswith("app.kubernetes.io/")
        }

    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": ours(meta.get("labels")),
            "annotations": ours(meta.get("annotations")),
        },
    }
    if "spec" in obj:
        out["spec"] = obj["spec"]
    return out


def live_objects(
    listing: dict[str, Any],
    *,
    namespace: str,
    api_version: str,
    kind: str,
    observe: Callable[[dict[str, Any]], Observed],
) -> list[Live]:
    """The managed objects of one namespace's list answer, as the watcher sees them.

    List items come without ``apiVersion``/``kind``; they are filled in so that the manifest
    reported to the gateway is a complete object.
    """
    found = []
    for obj in listing.get("items") or []:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        meta = obj.get("metadata") or {}
        found.append(
            Live(
                name=str(meta.get("name")),
                namespace=str(meta.get("namespace") or namespace),
                job_id=(meta.get("labels") or {}).get(names.JOB_ID_LABEL),
                manifest=desired_from_live(obj),
                observed=observe(obj),
            )
        )
    return found
