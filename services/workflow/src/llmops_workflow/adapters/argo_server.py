"""The Argo backend through the Argo Server REST API (``ARGO_SUBMIT_VIA=argo_server``).

The alternative to :class:`~llmops_workflow.adapters.argo.ArgoBackend` (the Kubernetes API)
for clusters where this worker gets an Argo Server URL and token instead of Kubernetes RBAC.
Same :class:`~llmops_workflow.ports.WorkflowBackend` behaviour, on ``httpx``:

* ``apply``: ``POST /api/v1/workflows/{ns}`` with ``{"workflow": <manifest>}``. A ``409``
  (gRPC ``AlreadyExists``) means a redelivered submission: the workflow is read back and its
  observed phase reported, nothing new starts. Unlike server-side apply, an existing workflow
  is never updated (the name is deterministic and the render is too, so a redelivery carries
  the same manifest).
* ``terminate``: read first; absent -> ``None``; already finished -> its observed phase (Argo
  Server refuses to shut down a completed workflow: "cannot shutdown a completed workflow");
  else ``PUT /api/v1/workflows/{ns}/{name}/terminate`` (what ``argo terminate`` does:
  ``spec.shutdown: Terminate``).
* ``observe``: ``GET /api/v1/workflows/{ns}?listOptions.labelSelector=<managed selector>``.
* ``ping``: the same list with ``listOptions.limit=1`` in the worker's namespace, so readiness
  covers the token and its RBAC, not just reachability (as the Kubernetes backend's list).

Errors follow :mod:`llmops_shared.kube.api`: no answer (refused, DNS, TLS, timeout), 408, 429,
5xx, 401/403 and redirects (an SSO login page) -> :class:`WorkflowUnavailable`; any other 4xx ->
:class:`WorkflowRejected` with the server's message (Argo Server answers gRPC-gateway errors
``{"code": <grpc code>, "message": ...}``). A 2xx that is not JSON (a wrong URL answered by
the Argo UI's ``index.html``) is unavailable too: it is configuration, not a verdict on the
workflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx
from pydantic import SecretStr

from llmops_shared.events import Phase
from llmops_workflow.adapters.objects import WORKFLOW, WORKFLOWS
from llmops_workflow.ports import Live, Manifest, WorkflowRejected, WorkflowUnavailable
from llmops_workflow.render import names
from llmops_workflow.render.status import Observed, observe_workflow

_UNAVAILABLE: Final = frozenset({401, 403, 408, 429})
_NOT_FOUND: Final = 404
_CONFLICT: Final = 409
_FINISHED: Final = frozenset({"Succeeded", "Failed", "Error"})
_COMPLETED_MARKER: Final = "cannot shutdown a completed workflow"


class _NotFound(Exception):
    """A 404 where "absent" is an answer (read, terminate, list)."""


class ArgoServerError(Exception):
    """A refusal kept for the caller to look at (status and message) before translating."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def authorization(token: SecretStr | None) -> dict[str, str]:
    """The ``Authorization`` header for ``ARGO_TOKEN``: ``Bearer <token>``. A token that already
    starts with ``Bearer `` (the ``argo`` CLI's convention for ``ARGO_TOKEN``) is sent as is."""
    if token is None:
        return {}
    value = token.get_secret_value().strip()
    if not value:
        return {}
    if value.lower().startswith("bearer "):
        return {"Authorization": value}
    return {"Authorization": f"Bearer {value}"}


def server_message(response: httpx.Response) -> str:
    """The gRPC-gateway ``message`` of an error body, else the body's text, else the reason."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:1000]
        return text or f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    return f"{response.status_code} {response.reason_phrase}"


class ArgoServerBackend:
    """A :class:`~llmops_workflow.ports.WorkflowBackend` on the Argo Server REST API."""

    name = "argo"
    observable = True

    def __init__(
        self,
        base_url: str,
        *,
        namespace: str,
        token: SecretStr | None = None,
        verify_tls: bool = True,
        request_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._namespace = namespace
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Accept": "application/json", **authorization(token)},
            verify=verify_tls,
            timeout=request_timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool (tests; the worker's process exit does it otherwise)."""
        await self._client.aclose()

    # ------------------------------------------------------------------ protocol

    async def apply(self, manifest: Manifest) -> Observed:
        meta = manifest["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        action = f"creating Workflow {namespace}/{name}"
        try:
            reply = await self._request(
                action, "POST", _workflows(namespace), json={"workflow": manifest}
            )
        except ArgoServerError as exc:
            if exc.status != _CONFLICT:
                raise _translate(exc, action) from exc
            # AlreadyExists: a redelivered submission reports what the controller did
            try:
                reply = await self._get(namespace, name)
            except _NotFound as gone:  # deleted between the two calls: let the retry create it
                raise WorkflowUnavailable(
                    f"Argo Server: Workflow {namespace}/{name} existed, then vanished"
                ) from gone
        if (reply.get("status") or {}).get("phase"):
            return observe_workflow(reply)
        return Observed(Phase.PENDING, "submitted; waiting for the Argo controller")

    async def terminate(self, namespace: str, name: str) -> Observed | None:
        try:
            current = await self._get(namespace, name)
        except _NotFound:
            return None
        if (current.get("status") or {}).get("phase") in _FINISHED:
            return observe_workflow(current)
        action = f"terminating Workflow {namespace}/{name}"
        try:
            reply = await self._request(
                action,
                "PUT",
                f"{_workflows(namespace)}/{name}/terminate",
                json={"name": name, "namespace": namespace},
            )
        except ArgoServerError as exc:
            if exc.status == _NOT_FOUND:
                return None
            if _COMPLETED_MARKER in exc.message:  # it finished since the read
                try:
                    return observe_workflow(await self._get(namespace, name))
                except _NotFound:
                    return None
            raise _translate(exc, action) from exc
        return observe_workflow(reply)

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            action = f"listing Workflows in {namespace}"
            try:
                listing = await self._request(
                    action,
                    "GET",
                    _workflows(namespace),
                    params={"listOptions.labelSelector": names.MANAGED_SELECTOR},
                )
            except ArgoServerError as exc:
                if exc.status == _NOT_FOUND:
                    continue
                raise _translate(exc, action) from exc
            found += [
                WORKFLOWS.live(WORKFLOW.fill(obj), namespace) for obj in listing.get("items") or []
            ]
        return found

    async def ping(self) -> None:
        """The server answers, the token is accepted and may list Workflows (a cheap list)."""
        action = "checking readiness"
        try:
            await self._request(
                action,
                "GET",
                _workflows(self._namespace),
                params={
                    "listOptions.labelSelector": names.MANAGED_SELECTOR,
                    "listOptions.limit": "1",
                },
            )
        except ArgoServerError as exc:
            raise _translate(exc, action) from exc

    # ------------------------------------------------------------------ HTTP

    async def _get(self, namespace: str, name: str) -> dict[str, Any]:
        action = f"reading Workflow {namespace}/{name}"
        try:
            return await self._request(action, "GET", f"{_workflows(namespace)}/{name}")
        except ArgoServerError as exc:
            if exc.status == _NOT_FOUND:
                raise _NotFound(name) from exc
            raise _translate(exc, action) from exc

    async def _request(
        self,
        action: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call; the decoded JSON object of a 2xx. Outages raise
        :class:`WorkflowUnavailable` here; a refusal raises :class:`ArgoServerError` for the
        caller to decide (404 may be an answer), then :func:`_translate`."""
        try:
            response = await self._client.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise WorkflowUnavailable(
                f"Argo Server unreachable while {action}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise WorkflowUnavailable(
                    f"Argo Server answered {action} with something that is not a JSON object "
                    f"({response.headers.get('content-type', 'no content type')}): check "
                    "ARGO_SERVER_URL"
                )
            return body
        raise ArgoServerError(response.status_code, server_message(response))


def _workflows(namespace: str) -> str:
    return f"/api/v1/workflows/{namespace}"


def _translate(exc: ArgoServerError, action: str) -> Exception:
    """The runtime's error for a refusal while doing ``action`` (the Kubernetes API's rules)."""
    if exc.status < 400 or exc.status >= 500 or exc.status in _UNAVAILABLE:  # 3xx: SSO redirect
        return WorkflowUnavailable(f"Argo Server unavailable while {action}: {exc.message}")
    return WorkflowRejected(f"Argo Server rejected {action}: {exc.message}")
