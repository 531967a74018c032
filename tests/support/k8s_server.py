"""A Kubernetes API server TEST DOUBLE that the real ``kubernetes`` Python client runs against.

This is not Kubernetes. It is a small in-process HTTP server (stdlib ``ThreadingHTTPServer`` on
127.0.0.1, a free port, one thread) that speaks enough of the Kubernetes REST wire protocol for
the real ``kubernetes`` client (37.x) to create, read, list, replace, patch (server-side apply,
JSON merge patch, JSON patch) and delete namespaced objects: custom resources
(``/apis/{group}/{version}/namespaces/{ns}/{plural}``), ``apps/v1`` Deployments, core ``v1``
Services, and any other plural the same way. There is no cluster, no controller, no admission,
no schema validation and no watch: tests drive ``.status`` themselves with :meth:`set_status`,
the way a controller would, and inject failures with :meth:`fail_next`::

    with KubeApiServer() as server:
        api = kubernetes.client.CustomObjectsApi(server.api_client())
        api.create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "ns", "inferenceservices", body,
            _headers={"Content-Type": "application/json"},
        )
        server.set_status("serving.kserve.io/v1beta1", "inferenceservices", "ns", "m",
                          {"conditions": [{"type": "Ready", "status": "True"}]})
        server.fail_next("GET", "/inferenceservices/m", 500)

What the real ``kubernetes`` 37.0.1 client sends, as recorded in :attr:`KubeApiServer.requests`:

* create (POST) carries no Content-Type unless given ``_headers={"Content-Type":
  "application/json"}``; the JSON body is accepted either way.
* server-side apply (``patch_namespaced_custom_object(..., field_manager="m", force=True,
  _content_type="application/apply-patch+yaml")``) sends
  ``PATCH .../{name}?fieldManager=m&force=true`` with Content-Type
  ``application/apply-patch+yaml`` and a **JSON** body (the client only takes a dict or list
  and serialises it with ``json.dumps``; JSON is YAML). YAML text (kubectl) is
  accepted too. An apply that creates answers 201, which the client does not map: the call
  returns ``None`` (use ``_preload_content=False`` or read the object back).
* a PATCH without ``_content_type`` is ``application/merge-patch+json`` for custom objects and
  ``application/strategic-merge-patch+json`` for built-in kinds; ``json-patch+json`` with a dict
  body is silently rewritten by the client to strategic merge patch.

What it does like the real API server (as far as the client can observe): ``uid``,
``resourceVersion`` (one global counter), ``generation`` (bumped only when something outside
``metadata``/``status`` changes), ``creationTimestamp``, ``managedFields`` (``FieldsV1``);
``Status`` error bodies with ``reason``/``details``/``code``; 404/409 ``AlreadyExists``/409
``Conflict`` on a stale ``resourceVersion``/422 ``Invalid``; ``labelSelector`` (equality,
inequality, set-based and existence) and ``fieldSelector`` on ``metadata.name``/``namespace``;
``dryRun``; the ``/status`` subresource (the main endpoint ignores ``.status``, the status
endpoint touches only ``.status``); server-side apply with per-manager field ownership, removal of
fields a manager stopped applying, and 409 conflicts between managers unless ``force=true``;
``PUT`` without ``metadata.resourceVersion`` is refused (422) for custom resources and allowed
for built-in kinds; strategic merge patch is refused (415) for custom resources.

Simplified: lists are atomic in apply and merge patch (no ``listType=map`` merge keys, so two
managers cannot share a ``containers`` list item by item), strategic merge patch on built-in
kinds is treated as a JSON merge patch, no defaulting or validation beyond metadata, no
finalizers or graceful deletion (DELETE removes at once and answers a ``Status``, or the object
for Services/Pods/ServiceAccounts/StorageClasses as the real registries do; its
``DeleteOptions.preconditions`` uid/resourceVersion are checked, 409 on a mismatch), no version
conversion (an object reads back with the ``apiVersion`` of the URL), no watch (answered with
400), no authentication.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes.client
import yaml

from support.http_double import DoubleHandler, HttpDouble, bound_handler

JsonDict = dict[str, Any]
FieldPath = tuple[str, ...]

#: API groups served by kube-apiserver itself (not CRDs): these allow unconditional PUT and
#: strategic merge patch, and their kind can be defaulted from the URL.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
    }
)

KNOWN_KINDS: dict[str, str] = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "services": "Service",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "pods": "Pod",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "ingresses": "Ingress",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "inferenceservices": "InferenceService",
    "servingruntimes": "ServingRuntime",
    "clusterservingruntimes": "ClusterServingRuntime",
    "workflows": "Workflow",
    "workflowtemplates": "WorkflowTemplate",
    "cronworkflows": "CronWorkflow",
}

#: metadata fields the server owns; never part of a manager's field set.
SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)

#: Resources whose registry sets ``ReturnDeletedObject``: DELETE answers the object itself
#: (the client's ``delete_namespaced_service`` expects a ``V1Service``), not a ``Status``.
RETURNS_DELETED_OBJECT = frozenset(
    {("", "services"), ("", "pods"), ("", "serviceaccounts"), ("storage.k8s.io", "storageclasses")}
)

_MISSING = object()


class ApiError(Exception):
    """An error answered as a Kubernetes ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonDict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def body(self) -> JsonDict:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: JsonDict | None = None) -> JsonDict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kind_for(plural: str) -> str:
    if plural in KNOWN_KINDS:
        return KNOWN_KINDS[plural]
    singular = plural[:-1] if plural.endswith("s") else plural
    return singular[:1].upper() + singular[1:]


# --------------------------------------------------------------------------- field paths


def leaf_paths(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Every leaf of ``obj``: scalars, lists (atomic) and empty maps, by path."""
    if isinstance(obj, dict) and (obj or not prefix):
        out: dict[FieldPath, Any] = {}
        for key, value in obj.items():
            out.update(leaf_paths(value, (*prefix, str(key))))
        return out
    return {prefix: obj}


def get_path(obj: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


def delete_path(obj: JsonDict, path: FieldPath) -> None:
    parents: list[tuple[JsonDict, str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _related(a: FieldPath, b: FieldPath) -> bool:
    """Equal, or one is a prefix of the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def fields_v1(paths: set[FieldPath]) -> JsonDict:
    tree: JsonDict = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def deep_merge(base: Any, patch: Any) -> Any:
    """Apply semantics: maps merged key by key, lists and scalars replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: Any, tokens: list[str], op: str) -> tuple[Any, str]:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise ApiError(422, "Invalid", f"{op} operation does not apply: doc is missing path")
    return node, tokens[-1]


def _pointer_get(doc: Any, tokens: list[str], op: str) -> Any:
    if not tokens:
        return doc
    node, last = _container(doc, tokens, op)
    if isinstance(node, dict) and last in node:
        return node[last]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node[int(last)]
    raise ApiError(422, "Invalid", f"{op} operation does not apply: doc is missing key: {last}")


def _pointer_remove(doc: Any, tokens: list[str], op: str) -> Any:
    value = _pointer_get(doc, tokens, op)
    node, last = _container(doc, tokens, op)
    if isinstance(node, dict):
        del node[last]
    else:
        del node[int(last)]
    return value


def _pointer_add(doc: Any, tokens: list[str], value: Any, op: str, replace: bool) -> Any:
    if not tokens:
        return copy.deepcopy(value)
    node, last = _container(doc, tokens, op)
    if isinstance(node, dict):
        if replace and last not in node:
            raise ApiError(422, "Invalid", f"replace operation does not apply: missing key {last}")
        node[last] = copy.deepcopy(value)
    elif isinstance(node, list):
        if last == "-" and not replace:
            node.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(node) - (1 if replace else 0):
            if replace:
                node[int(last)] = copy.deepcopy(value)
            else:
                node.insert(int(last), copy.deepcopy(value))
        else:
            raise ApiError(422, "Invalid", f"{op} operation does not apply: bad index {last}")
    else:
        raise ApiError(422, "Invalid", f"{op} operation does not apply: doc is missing path")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise ApiError(400, "BadRequest", "json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for operation in ops:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise ApiError(400, "BadRequest", f"invalid json patch operation: {operation!r}")
        op = operation["op"]
        tokens = _pointer(operation["path"])
        if op == "add":
            doc = _pointer_add(doc, tokens, operation.get("value"), op, replace=False)
        elif op == "replace":
            doc = _pointer_add(doc, tokens, operation.get("value"), op, replace=True)
        elif op == "remove":
            _pointer_remove(doc, tokens, op)
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = (
                _pointer_remove(doc, source, op)
                if op == "move"
                else copy.deepcopy(_pointer_get(doc, source, op))
            )
            doc = _pointer_add(doc, tokens, value, op, replace=False)
        elif op == "test":
            if _pointer_get(doc, tokens, op) != operation.get("value"):
                raise ApiError(422, "Invalid", f"testing value {operation['path']} failed")
        else:
            raise ApiError(400, "BadRequest", f"unexpected json patch operation {op!r}")
    return doc


# --------------------------------------------------------------------------- selectors

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for requirement in _split_selector(selector):
        set_match = _SET_RE.match(requirement)
        if set_match:
            key, operator, values_text = set_match.groups()
            values = {v.strip() for v in values_text.split(",") if v.strip()}
            if operator == "in" and labels.get(key) not in values:
                return False
            if operator == "notin" and key in labels and labels[key] in values:
                return False
        elif "!=" in requirement:
            key, value = (s.strip() for s in requirement.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in requirement:
            key, value = (s.strip() for s in re.split(r"==?", requirement, maxsplit=1))
            if labels.get(key) != value:
                return False
        elif requirement.startswith("!"):
            if requirement[1:].strip() in labels:
                return False
        elif requirement not in labels:
            return False
    return True


def field_selector_matches(selector: str, obj: JsonDict) -> bool:
    for requirement in _split_selector(selector):
        negate = "!=" in requirement
        key, value = (s.strip() for s in re.split(r"!=|==?", requirement, maxsplit=1))
        actual = get_path(obj, tuple(key.split(".")))
        if key == "metadata.namespace" and actual is _MISSING:
            actual = ""
        if (actual == value) == negate:
            return False
    return True


# --------------------------------------------------------------------------- store


@dataclass
class _Route:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        return self.group in BUILTIN_GROUPS

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.plural, self.namespace or "", self.name or "")

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class _Owners:
    """Field ownership of one object: (manager, operation, subresource) -> leaf paths."""

    sets: dict[tuple[str, str, str], set[FieldPath]] = field(default_factory=dict)
    times: dict[tuple[str, str, str], str] = field(default_factory=dict)


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def parse_route(path: str) -> _Route:
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2 and segments[0] == "api":
        group, version, rest = "", segments[1], segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource not in (None, "status"):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return _Route(group, version, namespace, plural, name, subresource)


def _strip_status_and_system(obj: JsonDict) -> JsonDict:
    """What a manager can own on the main resource: no status, no server-owned metadata."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: v for k, v in metadata.items() if k not in SYSTEM_METADATA}
        if not out["metadata"]:
            del out["metadata"]
    return out


def _scoped(obj: JsonDict, subresource: str | None) -> JsonDict:
    if subresource == "status":
        return {"status": copy.deepcopy(obj["status"])} if "status" in obj else {}
    return _strip_status_and_system(obj)


def _spec_part(obj: JsonDict) -> JsonDict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class KubeApiServer(HttpDouble):
    """In-process Kubernetes API test double: HTTP on 127.0.0.1 (free port), served by a thread."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], JsonDict] = {}
        self._owners: dict[tuple[str, str, str, str], _Owners] = {}
        self._kinds: dict[tuple[str, str], str] = {}
        self._failures: list[list[Any]] = []  # [method, path_contains, status, reason, left]
        self._rv = itertools.count(1)
        self._last_rv = 0

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_Handler, server_double=self)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A real client for this server: ``Configuration(host=url)``, no auth, no TLS."""
        if not self.url:
            raise RuntimeError("KubeApiServer is not started")
        configuration = kubernetes.client.Configuration(host=self.url)
        return kubernetes.client.ApiClient(configuration)

    # ------------------------------------------------------------------ inspecting and driving

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> JsonDict | None:
        group, _ = _split_api_version(api_version)
        with self._lock:
            obj = self._objects.get((group, plural, namespace, name))
            return self._render(obj, api_version, plural) if obj is not None else None

    def list(self, api_version: str, plural: str, namespace: str) -> list[JsonDict]:
        group, _ = _split_api_version(api_version)
        with self._lock:
            return [
                self._render(obj, api_version, plural)
                for (g, p, ns, _n), obj in sorted(self._objects.items())
                if g == group and p == plural and ns == namespace
            ]

    def set_status(
        self, api_version: str, plural: str, namespace: str, name: str, status: JsonDict
    ) -> None:
        """What a controller does: replace ``.status``, bump resourceVersion (not generation)."""
        group, _ = _split_api_version(api_version)
        with self._lock:
            key = (group, plural, namespace, name)
            obj = self._objects.get(key)
            if obj is None:
                raise KeyError(f"{api_version} {plural} {namespace}/{name} does not exist")
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def collect_garbage(self) -> list[tuple[str, str, str]]:
        """What the garbage collector does: delete every object with an ``ownerReference`` whose
        owner (by uid) no longer exists (e.g. KServe's ``Service`` of a deleted
        InferenceService). Returns the (plural, namespace, name) of what was deleted."""
        with self._lock:
            uids = {obj["metadata"].get("uid") for obj in self._objects.values()}
            orphans = [
                key
                for key, obj in self._objects.items()
                if (refs := obj["metadata"].get("ownerReferences"))
                and all(ref.get("uid") not in uids for ref in refs)
            ]
            for key in orphans:
                del self._objects[key]
                self._owners.pop(key, None)
                self._next_rv()
            return [(plural, ns, name) for _g, plural, ns, name in orphans]

    def fail_next(
        self,
        method: str,
        path_contains: str,
        status: int,
        reason: str = "InternalError",
        times: int = 1,
    ) -> None:
        """The next ``times`` requests whose method matches (``"*"``: any) and whose path with
        query contains ``path_contains`` answer ``status`` with a ``Status`` body."""
        with self._lock:
            self._failures.append([method.upper(), path_contains, status, reason, times])

    # ------------------------------------------------------------------ internals

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _render(self, obj: JsonDict, api_version: str, plural: str) -> JsonDict:
        out = copy.deepcopy(obj)
        out["apiVersion"] = api_version
        key = (
            _split_api_version(api_version)[0],
            plural,
            obj["metadata"].get("namespace", ""),
            obj["metadata"]["name"],
        )
        owners = self._owners.get(key)
        if owners is not None and owners.sets:
            out["metadata"]["managedFields"] = [
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": api_version,
                    "time": owners.times.get((manager, operation, sub), ""),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(paths),
                    **({"subresource": sub} if sub else {}),
                }
                for (manager, operation, sub), paths in owners.sets.items()
            ]
        return out

    def _take_failure(self, method: str, path: str) -> ApiError | None:
        with self._lock:
            for failure in self._failures:
                f_method, contains, code, reason, left = failure
                if f_method in (method, "*") and contains in path and left > 0:
                    failure[4] = left - 1
                    self._failures = [f for f in self._failures if f[4] > 0]
                    return ApiError(code, reason, f"injected failure: {reason}")
        return None

    def handle(
        self, method: str, raw_path: str, content_type: str | None, body: bytes, user_agent: str
    ) -> tuple[int, JsonDict]:
        with self._lock:
            self.requests.append((method, raw_path, content_type))
        injected = self._take_failure(method, raw_path)
        if injected is not None:
            return injected.code, injected.body()
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            route = parse_route(split.path)
            with self._lock:
                return self._dispatch(method, route, query, content_type, body, user_agent)
        except ApiError as error:
            return error.code, error.body()

    def _details(self, route: _Route, name: str | None = None) -> JsonDict:
        details: JsonDict = {"kind": route.plural}
        if route.group:
            details["group"] = route.group
        if name or route.name:
            details["name"] = name or route.name
        return details

    def _not_found(self, route: _Route) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{route.qualified} "{route.name}" not found',
            self._details(route),
        )

    def _kind(self, route: _Route) -> str:
        return self._kinds.get((route.group, route.plural)) or _kind_for(route.plural)

    def _decode(self, body: bytes, yaml_ok: bool = False) -> Any:
        if not body.strip():
            raise ApiError(400, "BadRequest", "the request body is empty")
        try:
            return yaml.safe_load(body) if yaml_ok else json.loads(body)
        except (ValueError, yaml.YAMLError) as error:
            raise ApiError(
                400, "BadRequest", f"the body of the request could not be decoded: {error}"
            ) from error

    def _dispatch(
        self,
        method: str,
        route: _Route,
        query: dict[str, str],
        content_type: str | None,
        body: bytes,
        user_agent: str,
    ) -> tuple[int, JsonDict]:
        if query.get("watch") in ("true", "1"):
            raise ApiError(400, "BadRequest", "watch is not supported by this test server")
        manager = query.get("fieldManager") or user_agent.split("/", 1)[0] or "unknown"
        dry_run = bool(query.get("dryRun"))
        if route.name is None:
            if method == "GET":
                return 200, self._list(route, query)
            if method == "POST":
                if route.subresource:
                    raise ApiError(405, "MethodNotAllowed", "POST is not allowed here")
                return self._create(route, self._decode(body), manager, dry_run)
            if method == "DELETE":
                return 200, self._delete_collection(route, query, dry_run)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        if method == "GET":
            obj = self._objects.get(route.key)
            if obj is None:
                if route.plural == "namespaces" and route.group == "":
                    return 200, self._namespace(route.name)
                raise self._not_found(route)
            return 200, self._render_route(obj, route)
        if method == "PUT":
            return self._replace(route, self._decode(body), manager, dry_run)
        if method == "PATCH":
            return self._patch(route, query, content_type, body, manager, dry_run)
        if method == "DELETE":
            if route.subresource:
                raise ApiError(405, "MethodNotAllowed", "DELETE is not allowed on a subresource")
            return self._delete(route, dry_run, body)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _render_route(self, obj: JsonDict, route: _Route) -> JsonDict:
        return self._render(obj, route.api_version, route.plural)

    def _namespace(self, name: str | None) -> JsonDict:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, str(name)))},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def _list(self, route: _Route, query: dict[str, str]) -> JsonDict:
        items = []
        for (group, plural, namespace, _name), obj in sorted(self._objects.items()):
            if group != route.group or plural != route.plural:
                continue
            if route.namespace is not None and namespace != route.namespace:
                continue
            labels = obj["metadata"].get("labels") or {}
            if query.get("labelSelector") and not label_selector_matches(
                query["labelSelector"], labels
            ):
                continue
            if query.get("fieldSelector") and not field_selector_matches(
                query["fieldSelector"], obj
            ):
                continue
            items.append(self._render_route(obj, route))
        return {
            "apiVersion": route.api_version,
            "kind": f"{self._kind(route)}List",
            "metadata": {"resourceVersion": str(self._last_rv)},
            "items": items,
        }

    def _check_body(self, route: _Route, obj: Any) -> JsonDict:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if route.builtin:
            obj.setdefault("apiVersion", route.api_version)
            obj.setdefault("kind", self._kind(route))
        for key in ("kind", "apiVersion"):
            if not obj.get(key):
                raise ApiError(400, "BadRequest", f"Object '{key[0].upper() + key[1:]}' is missing")
        if obj["apiVersion"] != route.api_version:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                f"API version ({route.api_version})",
            )
        namespace = metadata.get("namespace")
        if namespace and route.namespace is not None and namespace != route.namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        if route.name is not None and metadata.get("name") not in (None, route.name):
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({metadata.get('name')}) does not match the name on the "
                f"URL ({route.name})",
            )
        return obj

    def _store(self, route: _Route, new: JsonDict, old: JsonDict | None, dry_run: bool) -> JsonDict:
        """Bump resourceVersion/generation when something changed; persist unless dry run."""
        if old is not None and new == old:
            return new
        if old is not None and _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if not dry_run:
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._objects[route.key] = new
            self._kinds.setdefault((route.group, route.plural), new["kind"])
        return new

    def _new_object(self, route: _Route, obj: JsonDict) -> JsonDict:
        obj = copy.deepcopy(obj)
        metadata = obj["metadata"]
        metadata = {k: v for k, v in metadata.items() if k not in SYSTEM_METADATA}
        metadata["name"] = obj["metadata"]["name"]
        if route.namespace is not None:
            metadata["namespace"] = route.namespace
        metadata["uid"] = str(uuid.uuid4())
        metadata["generation"] = 1
        metadata["creationTimestamp"] = _now()
        obj["metadata"] = metadata
        obj.pop("status", None)
        return obj

    def _create(self, route: _Route, obj: Any, manager: str, dry_run: bool) -> tuple[int, JsonDict]:
        obj = self._check_body(route, obj)
        metadata = obj["metadata"]
        if not metadata.get("name"):
            if metadata.get("generateName"):
                metadata["name"] = f"{metadata['generateName']}{uuid.uuid4().hex[:5]}"
            else:
                raise ApiError(
                    422,
                    "Invalid",
                    f'{obj["kind"]}.{route.group or "core"} "" is invalid: metadata.name: '
                    "Required value: name or generateName is required",
                    {
                        **self._details(route, ""),
                        "kind": obj["kind"],
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: name or generateName is required",
                                "field": "metadata.name",
                            }
                        ],
                    },
                )
        route = _Route(
            route.group, route.version, route.namespace, route.plural, metadata["name"], None
        )
        if route.key in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{route.qualified} "{route.name}" already exists',
                self._details(route),
            )
        new = self._new_object(route, obj)
        stored = self._store(route, new, None, dry_run)
        if not dry_run:
            self._record_update(route, None, stored, manager, None)
        return 201, self._render_route(stored, route)

    def _existing(self, route: _Route) -> JsonDict:
        obj = self._objects.get(route.key)
        if obj is None:
            raise self._not_found(route)
        return obj

    def _check_rv(self, route: _Route, body: JsonDict, current: JsonDict) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {route.qualified} "{route.name}": the object '
                "has been modified; please apply your changes to the latest version and try again",
                self._details(route),
            )

    def _merge_into(self, route: _Route, current: JsonDict, wanted: JsonDict) -> JsonDict:
        """The new stored object: ``wanted`` for the part this endpoint may change."""
        new = copy.deepcopy(current)
        if route.subresource == "status":
            if "status" in wanted:
                new["status"] = copy.deepcopy(wanted["status"])
            else:
                new.pop("status", None)
            return new
        for key in list(new):
            if key not in ("metadata", "status", "apiVersion", "kind"):
                del new[key]
        for key, value in wanted.items():
            if key not in ("metadata", "status", "apiVersion", "kind"):
                new[key] = copy.deepcopy(value)
        system = {k: v for k, v in current["metadata"].items() if k in SYSTEM_METADATA}
        user = {
            k: copy.deepcopy(v)
            for k, v in (wanted.get("metadata") or {}).items()
            if k not in SYSTEM_METADATA
        }
        new["metadata"] = {**user, **system}
        return new

    def _replace(
        self, route: _Route, body: Any, manager: str, dry_run: bool
    ) -> tuple[int, JsonDict]:
        body = self._check_body(route, body)
        current = self._existing(route)
        if not route.builtin and not body["metadata"].get("resourceVersion"):
            raise ApiError(
                422,
                "Invalid",
                f'{self._kind(route)}.{route.group} "{route.name}" is invalid: '
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                self._details(route),
            )
        self._check_rv(route, body, current)
        new = self._merge_into(route, current, body)
        stored = self._store(route, new, current, dry_run)
        if not dry_run:
            self._record_update(route, current, stored, manager, route.subresource)
        return 200, self._render_route(stored, route)

    def _patch(
        self,
        route: _Route,
        query: dict[str, str],
        content_type: str | None,
        body: bytes,
        manager: str,
        dry_run: bool,
    ) -> tuple[int, JsonDict]:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media == "application/apply-patch+yaml":
            if not query.get("fieldManager"):
                raise ApiError(400, "BadRequest", "fieldManager is required for apply requests")
            force = query.get("force", "").lower() in ("true", "1")
            return self._apply(
                route, self._decode(body, yaml_ok=True), query["fieldManager"], force, dry_run
            )
        if media == "application/strategic-merge-patch+json" and not route.builtin:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json, "
                f"application/apply-patch+yaml (strategic merge patch is not supported for "
                f"custom resources; got {media})",
            )
        if media not in (
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/strategic-merge-patch+json",
        ):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, application/merge-patch+json, "
                f"application/apply-patch+yaml (got {content_type!r})",
            )
        current = self._existing(route)
        patch = self._decode(body)
        base = self._render_route(current, route)
        base["metadata"].pop("managedFields", None)
        if media == "application/json-patch+json":
            patched = json_patch(base, patch)
        else:
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            self._check_rv(route, patch, current)
            patched = merge_patch(base, patch)
        if not isinstance(patched, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        patched.setdefault("metadata", {})
        new = self._merge_into(route, current, patched)
        stored = self._store(route, new, current, dry_run)
        if not dry_run:
            self._record_update(route, current, stored, manager, route.subresource)
        return 200, self._render_route(stored, route)

    def _delete(self, route: _Route, dry_run: bool, body: bytes = b"") -> tuple[int, JsonDict]:
        current = self._existing(route)
        self._check_preconditions(route, self._decode(body) if body.strip() else {}, current)
        rendered = self._render_route(current, route)
        if not dry_run:
            del self._objects[route.key]
            self._owners.pop(route.key, None)
            self._next_rv()
        if (route.group, route.plural) in RETURNS_DELETED_OBJECT:
            return 200, rendered
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {**self._details(route), "uid": current["metadata"]["uid"]},
        }

    def _check_preconditions(self, route: _Route, options: Any, current: JsonDict) -> None:
        """``DeleteOptions.preconditions``: uid and resourceVersion must match (409 otherwise)."""
        wanted = (options.get("preconditions") if isinstance(options, dict) else None) or {}
        for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            value = wanted.get(field_name)
            actual = current["metadata"].get(field_name)
            if value is not None and str(value) != str(actual):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {label} in precondition: {value}, {label} in object "
                    f"meta: {actual}",
                    self._details(route),
                )

    def _delete_collection(self, route: _Route, query: dict[str, str], dry_run: bool) -> JsonDict:
        listed = self._list(route, query)
        if not dry_run:
            for item in listed["items"]:
                key = (
                    route.group,
                    route.plural,
                    item["metadata"].get("namespace", ""),
                    item["metadata"]["name"],
                )
                self._objects.pop(key, None)
                self._owners.pop(key, None)
            self._next_rv()
        return listed

    # ------------------------------------------------------------------ field ownership

    def _record_update(
        self,
        route: _Route,
        old: JsonDict | None,
        new: JsonDict,
        manager: str,
        subresource: str | None,
    ) -> None:
        """An Update (create, PUT, merge/JSON patch): the changed fields move to ``manager``."""
        owners = self._owners.setdefault(route.key, _Owners())
        old_leaves = leaf_paths(_scoped(old, subresource)) if old is not None else {}
        new_leaves = leaf_paths(_scoped(new, subresource))
        old_leaves.pop((), None)
        new_leaves.pop((), None)
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, _MISSING) != v}
        removed = set(old_leaves) - set(new_leaves)
        if not changed and not removed:
            return
        me = (manager, "Update", subresource or "")
        for entry, paths in owners.sets.items():
            if entry != me:
                paths.difference_update(
                    {q for q in paths if any(_related(q, c) for c in changed | removed)}
                )
        mine = owners.sets.setdefault(me, set())
        mine.difference_update(removed)
        mine.update(changed)
        owners.times[me] = _now()
        owners.sets = {k: v for k, v in owners.sets.items() if v}

    def _apply(
        self, route: _Route, applied: Any, manager: str, force: bool, dry_run: bool
    ) -> tuple[int, JsonDict]:
        applied = self._check_body(route, applied)
        if not applied["metadata"].get("name"):
            if route.name is None:
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            applied["metadata"]["name"] = route.name
        current = self._objects.get(route.key)
        me = (manager, "Apply", route.subresource or "")
        scoped = _scoped(applied, route.subresource)
        new_paths = set(leaf_paths(scoped))
        new_paths.discard(())
        if current is None:
            if route.subresource:
                raise self._not_found(route)
            new = self._new_object(route, applied)
            stored = self._store(route, new, None, dry_run)
            if not dry_run:
                owners = self._owners.setdefault(route.key, _Owners())
                owners.sets = {me: new_paths}
                owners.times = {me: _now()}
            return 201, self._render_route(stored, route)

        owners = self._owners.setdefault(route.key, _Owners())
        merged = deep_merge(current, scoped)
        conflicts: list[tuple[tuple[str, str, str], FieldPath]] = []
        for entry, paths in owners.sets.items():
            if entry == me or entry[0] == manager:
                continue
            for owned in paths:
                touched = any(_related(owned, p) for p in new_paths)
                if touched and get_path(current, owned) != get_path(merged, owned):
                    conflicts.append((entry, owned))
        if conflicts and not force:
            causes = [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{entry[0]}"'
                    + (f" using {route.api_version}" if entry[1] == "Update" else ""),
                    "field": "." + ".".join(path),
                }
                for entry, path in conflicts
            ]
            summary = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(causes)} conflict{'s' if len(causes) > 1 else ''}: "
                f"{summary}",
                {**self._details(route), "causes": causes},
            )

        previous = owners.sets.get(me, set())
        others = [paths for entry, paths in owners.sets.items() if entry != me]
        for stale in sorted(previous - new_paths, key=len, reverse=True):
            if any(_related(stale, p) for p in new_paths):
                continue
            if any(q[: len(stale)] == stale for paths in others for q in paths):
                continue
            delete_path(merged, stale)
            parent = stale[:-1]
            while len(parent) >= 2 and get_path(merged, parent) == {}:
                delete_path(merged, parent)
                parent = parent[:-1]

        new = self._merge_into(route, current, merged)
        stored = self._store(route, new, current, dry_run)
        if not dry_run:
            for entry, path in conflicts:
                owners.sets[entry].discard(path)
            if owners.sets.get(me) != new_paths:
                owners.times[me] = _now()
            owners.sets[me] = new_paths
            owners.sets = {k: v for k, v in owners.sets.items() if v}
        return 200, self._render_route(stored, route)


class _Handler(DoubleHandler):
    server_double: KubeApiServer

    def _serve(self) -> None:
        code, payload = self.server_double.handle(
            self.command,
            self.path,
            self.headers.get("Content-Type"),
            self.read_body(),
            self.headers.get("User-Agent") or "",
        )
        self.send_json(code, payload)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve
