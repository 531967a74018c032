"""An Argo Server REST API TEST DOUBLE for the workflow worker's ``ArgoServerBackend``.

This is not Argo. It is a small in-process HTTP server (stdlib ``ThreadingHTTPServer`` on
127.0.0.1, a free port, daemon threads) that keeps Workflows in memory and answers the
endpoints of the Argo Server REST API (``argo server``, port 2746) the worker uses, with the
shapes the real server's gRPC-gateway sends:

* ``POST /api/v1/workflows/{ns}`` with ``{"workflow": {...}}`` -> 200 and the created Workflow
  (``metadata.uid/resourceVersion/generation/creationTimestamp`` filled, ``status: {}``);
  an existing name -> 409 ``{"code": 6, "message": "workflows.argoproj.io \\"x\\" already
  exists"}`` (gRPC ``AlreadyExists``); no ``workflow`` or no ``metadata.name`` -> 400
  ``{"code": 3, ...}`` (``InvalidArgument``). (``generateName`` is not supported.)
* ``GET /api/v1/workflows/{ns}/{name}`` -> the Workflow, or 404 ``{"code": 5, "message":
  "workflows.argoproj.io \\"x\\" not found"}``.
* ``GET /api/v1/workflows/{ns}?listOptions.labelSelector=...&listOptions.limit=N`` ->
  ``{"metadata": {"resourceVersion": ...}, "items": [...]}``; items carry no
  ``apiVersion``/``kind`` and ``items`` is ``null`` when nothing matches (as the real server).
* ``PUT /api/v1/workflows/{ns}/{name}/terminate`` -> the Workflow with ``spec.shutdown:
  Terminate``; a completed one (Succeeded/Failed/Error) -> 500 ``{"code": 13, "message":
  "cannot shutdown a completed workflow: ..."}`` as Argo's ``patchShutdownStrategy``.
* ``DELETE /api/v1/workflows/{ns}/{name}`` -> ``{}``; ``GET /api/v1/version`` -> a version.

With ``token=...`` every ``/api/`` request must carry ``Authorization: Bearer <token>``, else
401 ``{"code": 16, ...}`` (``Unauthenticated``). There is no controller, no lint, no archive:
tests play the controller with :meth:`ArgoServerDouble.set_status` and inject failures with
:meth:`ArgoServerDouble.fail_next`::

    with ArgoServerDouble(token="t0k") as argo:
        backend = ArgoServerBackend(argo.url, namespace="ns", token=SecretStr("t0k"))
        argo.set_status("ns", "train-x", {"phase": "Running"})
        argo.fail_next("POST", "/api/v1/workflows/ns", 500)
"""

from __future__ import annotations

import builtins
import copy
import itertools
import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.http_double import DoubleHandler, HttpDouble, bound_handler
from support.k8s_server import label_selector_matches

JsonDict = dict[str, Any]

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}
"""HTTP status -> the gRPC code grpc-gateway reports in the body (the reverse mapping)."""

_FINISHED = frozenset({"Succeeded", "Failed", "Error"})


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def grpc_error(status: int, message: str) -> JsonDict:
    """The error body grpc-gateway writes: ``{"code": <grpc code>, "message": ...}``."""
    return {"code": GRPC_CODES.get(status, 2), "message": message}


class ArgoServerDouble(HttpDouble):
    """In-process Argo Server REST API test double (see the module docstring)."""

    def __init__(self, *, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """``(method, path with query, headers)`` of every request, in order."""
        self._lock = threading.RLock()
        self._workflows: dict[tuple[str, str], JsonDict] = {}
        self._failures: list[list[Any]] = []  # [method, contains, status, message, body, left]
        self._rv = itertools.count(1)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_Handler, server_double=self)

    # ------------------------------------------------------------------ inspecting and driving

    def get(self, namespace: str, name: str) -> JsonDict | None:
        with self._lock:
            obj = self._workflows.get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, namespace: str) -> list[JsonDict]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (ns, _name), obj in sorted(self._workflows.items())
                if ns == namespace
            ]

    def set_status(self, namespace: str, name: str, status: JsonDict) -> None:
        """What the Argo controller does: replace ``.status``, bump ``resourceVersion``."""
        with self._lock:
            obj = self._workflows.get((namespace, name))
            if obj is None:
                raise KeyError(f"Workflow {namespace}/{name} does not exist")
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = str(next(self._rv))

    def delete(self, namespace: str, name: str) -> None:
        """What the TTL controller (or ``argo delete``) does."""
        with self._lock:
            self._workflows.pop((namespace, name), None)

    def fail_next(
        self,
        method: str,
        path_contains: str,
        status: int,
        message: str = "injected failure",
        *,
        body: str | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests whose method matches (``"*"``: any) and whose path with
        query contains ``path_contains`` answer ``status`` with a gRPC-gateway error body
        (``{"code", "message"}``), or with ``body`` as ``text/html`` when given."""
        with self._lock:
            self._failures.append([method.upper(), path_contains, status, message, body, times])

    # ------------------------------------------------------------------ serving

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, JsonDict | str]:
        with self._lock:
            self.requests.append((method, raw_path, headers))
            injected = self._take_failure(method, raw_path)
        if injected is not None:
            return injected
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        parts = [p for p in split.path.split("/") if p]
        try:
            if parts[:2] != ["api", "v1"]:
                return 200, "<!doctype html><title>Argo</title>"  # the UI answers the rest
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                raise _Refusal(401, "token not valid. see https://argo-workflows.readthedocs.io")
            with self._lock:
                return 200, self._dispatch(method, parts[2:], query, body)
        except _Refusal as refusal:
            return refusal.status, grpc_error(refusal.status, refusal.message)

    def _take_failure(self, method: str, path: str) -> tuple[int, JsonDict | str] | None:
        for failure in self._failures:
            f_method, contains, status, message, body, left = failure
            if f_method in (method, "*") and contains in path and left > 0:
                failure[5] = left - 1
                self._failures = [f for f in self._failures if f[5] > 0]
                return status, body if body is not None else grpc_error(status, message)
        return None

    def _dispatch(
        self, method: str, parts: builtins.list[str], query: dict[str, str], body: bytes
    ) -> Any:
        if parts == ["version"] and method == "GET":
            return {"version": "v3.6.0-double", "platform": "linux/amd64"}
        if not parts or parts[0] != "workflows" or len(parts) < 2:
            raise _Refusal(404, "Not Found")
        namespace, rest = parts[1], parts[2:]
        if not rest and method == "POST":
            return self._create(namespace, body)
        if not rest and method == "GET":
            return self._list(namespace, query)
        if len(rest) == 1 and method == "GET":
            return copy.deepcopy(self._existing(namespace, rest[0]))
        if len(rest) == 1 and method == "DELETE":
            self._existing(namespace, rest[0])
            del self._workflows[(namespace, rest[0])]
            return {}
        if len(rest) == 2 and rest[1] == "terminate" and method == "PUT":
            return self._terminate(namespace, rest[0])
        raise _Refusal(404, "Not Found")

    def _existing(self, namespace: str, name: str) -> JsonDict:
        obj = self._workflows.get((namespace, name))
        if obj is None:
            raise _Refusal(404, f'workflows.argoproj.io "{name}" not found')
        return obj

    def _create(self, namespace: str, body: bytes) -> JsonDict:
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            raise _Refusal(400, f"invalid JSON: {exc}") from exc
        workflow = request.get("workflow") if isinstance(request, dict) else None
        if not isinstance(workflow, dict):
            raise _Refusal(400, "workflow is required")
        meta = workflow.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise _Refusal(400, "metadata.name is required (generateName is not supported)")
        if meta.get("namespace", namespace) != namespace:
            raise _Refusal(400, "the namespace of the workflow does not match the request")
        if (namespace, name) in self._workflows:
            raise _Refusal(409, f'workflows.argoproj.io "{name}" already exists')
        obj = copy.deepcopy(workflow)
        obj.setdefault("apiVersion", "argoproj.io/v1alpha1")
        obj.setdefault("kind", "Workflow")
        obj["metadata"] = {
            **copy.deepcopy(meta),
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(next(self._rv)),
            "generation": 1,
            "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        obj["status"] = {}
        self._workflows[(namespace, name)] = obj
        return copy.deepcopy(obj)

    def _list(self, namespace: str, query: dict[str, str]) -> JsonDict:
        selector = query.get("listOptions.labelSelector", "")
        items = []
        for (ns, _name), obj in sorted(self._workflows.items()):
            labels = obj["metadata"].get("labels") or {}
            if ns == namespace and (not selector or label_selector_matches(selector, labels)):
                item = copy.deepcopy(obj)
                item.pop("apiVersion", None)
                item.pop("kind", None)
                items.append(item)
        limit = int(query.get("listOptions.limit") or 0)
        if limit:
            items = items[:limit]
        return {"metadata": {"resourceVersion": str(next(self._rv))}, "items": items or None}

    def _terminate(self, namespace: str, name: str) -> JsonDict:
        obj = self._existing(namespace, name)
        if (obj.get("status") or {}).get("phase") in _FINISHED:
            raise _Refusal(
                500,
                f'cannot shutdown a completed workflow: workflow: "{name}", '
                f'namespace: "{namespace}"',
            )
        if (obj.get("spec") or {}).get("shutdown") != "Terminate":
            obj.setdefault("spec", {})["shutdown"] = "Terminate"
            obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(obj)


class _Handler(DoubleHandler):
    server_double: ArgoServerDouble

    def _serve(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        code, payload = self.server_double.handle(
            self.command, self.path, headers, self.read_body()
        )
        if isinstance(payload, str):
            self.send_body(code, payload.encode(), content_type="text/html; charset=utf-8")
        else:
            self.send_json(code, payload)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
