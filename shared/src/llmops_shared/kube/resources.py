"""The objects of one kind through the Kubernetes API, as plain dicts: what the serving and
workflow cluster backends are built on.

A backend configures :class:`KubeObjects` with :class:`Verbs`, the calls its worker makes on the
kind, each bound to its object (the ``kubernetes`` method with the kind's group, version and
plural and the object's namespace and name), and gets the rest the same way for every kind:

* server-side apply: ``PATCH`` with ``application/apply-patch+yaml`` under the worker's field
  manager and ``force=True``, so the object is created if missing and updated otherwise in one
  idempotent call (a redelivery changes nothing), fields edited by hand are taken back (the
  event is the source of truth), and fields the worker stops sending are removed by the API
  server, because its field manager owned them;
* merge patches under another field manager (one an apply never takes back), and creates that
  count "already exists" as done;
* reads, lists and deletes where "absent" is an answer (``None``, ``[]``, done), and deletes
  guarded by the uid that was checked (:func:`delete_if`);
* listing by the llm-ops labels into :class:`~llmops_shared.kube.objects.Live` objects.

The verbs are the workers' own, one short method each (a custom resource's are the shared
:class:`~llmops_shared.kube.custom.CustomObjects`, of those the worker declares): the Helm chart
grants a worker exactly the calls its adapters make, and tests/deploy/test_rbac.py reads them
from the adapters' source.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmops_shared.kube.api import KubeCalls, is_conflict, is_not_found
from llmops_shared.kube.objects import Kind, Live, View

T = TypeVar("T")

Call = Callable[..., object]
"""A ``kubernetes`` method bound to one object (or namespace); the call adds the rest."""

DELETE_ATTEMPTS: Final = 3


class Verbs:
    """The calls one worker makes on one kind of object; a kind defines those it uses.

    ``apply`` binds ``_content_type=APPLY_CONTENT_TYPE`` and ``merge_patch``
    ``_content_type=MERGE_PATCH_CONTENT_TYPE`` (the content type is what makes the verb).
    """

    kind: Kind

    def read(self, namespace: str, name: str) -> Call:
        raise self._unsupported("read")

    def listing(self, namespace: str) -> Call:
        raise self._unsupported("list")

    def apply(self, namespace: str, name: str) -> Call:
        raise self._unsupported("apply")

    def merge_patch(self, namespace: str, name: str) -> Call:
        raise self._unsupported("merge-patch")

    def create(self, namespace: str) -> Call:
        raise self._unsupported("create")

    def delete(self, namespace: str, name: str) -> Call:
        raise self._unsupported("delete")

    def ping(self) -> Call:
        """The cheapest call that shows the API answers (and knows the kind)."""
        raise self._unsupported("ping")

    def _unsupported(self, verb: str) -> NotImplementedError:
        return NotImplementedError(f"this worker does not {verb} {self.kind.kind} objects")


@dataclass(frozen=True)
class Cluster:
    """One worker's access to the API: the client, its errors, its field manager (the owner of
    the fields it applies) and the timeout of every request."""

    api_client: client.ApiClient
    calls: KubeCalls
    field_manager: str
    request_timeout_s: float = 10.0

    def objects(self, verbs: Verbs) -> KubeObjects:
        """The objects of ``verbs``'s kind on this cluster."""
        return KubeObjects(self, verbs)


class KubeObjects:
    """The objects of one kind, as plain dicts (camelCase keys, as the API sends them)."""

    def __init__(self, cluster: Cluster, verbs: Verbs) -> None:
        self._cluster = cluster
        self._verbs = verbs
        self.kind = verbs.kind

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or ``None`` when there is none."""
        try:
            obj = await self._run(
                f"reading {self._what(namespace, name)}",
                self._verbs.read(namespace, name),
                absent_ok=True,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return None
            raise
        return self._plain(obj)

    async def select(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The objects matching the label ``selector`` (none when the namespace is missing),
        each with its ``apiVersion`` and ``kind``."""
        try:
            listing = await self._run(
                f"listing {self.kind.kind}s in {namespace}",
                self._verbs.listing(namespace),
                label_selector=selector,
                absent_ok=True,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return []
            raise
        return [self.kind.fill(obj) for obj in self._plain(listing).get("items") or []]

    async def observe(self, namespaces: Sequence[str], view: View[T]) -> list[Live[T]]:
        """Every object of ``view``'s selector in ``namespaces``, as ``view`` sees it."""
        found: list[Live[T]] = []
        for namespace in namespaces:
            found += [
                view.live(obj, namespace) for obj in await self.select(namespace, view.selector)
            ]
        return found

    async def live(self, namespace: str, name: str, view: View[T]) -> Live[T] | None:
        """One object as ``view`` sees it, or ``None`` when there is none."""
        obj = await self.get(namespace, name)
        return view.live(self.kind.fill(obj), namespace) if obj is not None else None

    async def apply(self, obj: dict[str, Any]) -> object:
        """Server-side apply ``obj`` (see the module); the API's answer (``None`` for a
        create, whose 201 the client does not decode; the object otherwise)."""
        meta = obj["metadata"]
        return await self._run(
            f"applying {self._what(meta['namespace'], meta['name'])}",
            self._verbs.apply(meta["namespace"], meta["name"]),
            body=obj,
            field_manager=self._cluster.field_manager,
            force=True,
        )

    async def merge_patch(
        self,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        doing: str,
        field_manager: str | None = None,
        absent_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Merge ``patch`` into the object (``doing`` names the change in errors) under
        ``field_manager`` (default: the worker's); the object after it. With ``absent_ok`` a
        missing object is ``None``, else a rejection."""
        try:
            reply = await self._run(
                f"{doing} {self._what(namespace, name)}",
                self._verbs.merge_patch(namespace, name),
                body=patch,
                field_manager=field_manager or self._cluster.field_manager,
                absent_ok=absent_ok,
            )
        except ApiException as exc:
            if is_not_found(exc):
                return None
            raise
        return self._plain(reply) if reply is not None else {}

    async def create(self, obj: dict[str, Any]) -> bool:
        """Create ``obj``; ``False`` when an object of its name exists already (nothing is
        changed then)."""
        meta = obj["metadata"]
        try:
            await self._run(
                f"creating {self._what(meta['namespace'], meta['name'])}",
                self._verbs.create(meta["namespace"]),
                body=obj,
                field_manager=self._cluster.field_manager,
            )
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    async def delete(self, namespace: str, name: str) -> None:
        """Delete the object; a missing one counts as deleted."""
        try:
            await self.delete_with(namespace, name)
        except ApiException as exc:
            if not is_not_found(exc):
                raise

    async def delete_with(
        self, namespace: str, name: str, options: client.V1DeleteOptions | None = None
    ) -> object:
        """Delete the object with ``options`` (a precondition); a missing one raises the API's
        404 (:func:`~llmops_shared.kube.api.is_not_found`)."""
        extra = {"body": options} if options is not None else {}
        return await self._run(
            f"deleting {self._what(namespace, name)}",
            self._verbs.delete(namespace, name),
            absent_ok=True,
            **extra,
        )

    async def ping(self) -> None:
        """Raise unless the API answers now."""
        await self._run("checking readiness", self._verbs.ping())

    async def _run(self, action: str, call: Call, *, absent_ok: bool = False, **kwargs: Any) -> Any:
        return await self._cluster.calls.call(
            action,
            call,
            absent_ok=absent_ok,
            _request_timeout=self._cluster.request_timeout_s,
            **kwargs,
        )

    def _what(self, namespace: str, name: str) -> str:
        return f"{self.kind.kind} {namespace}/{name}"

    def _plain(self, model: object) -> dict[str, Any]:
        """A typed client model as the plain dict the API sent (custom objects are one)."""
        if isinstance(model, dict):
            return model
        plain = self._cluster.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return plain if isinstance(plain, dict) else {}


class Deletion(Enum):
    """What :func:`delete_if` did."""

    GONE = "gone"
    """Nothing to delete: missing, or already being deleted (finalizers running)."""
    DELETED = "deleted"
    REFUSED = "refused"
    """``allowed`` said no: the object is left alone."""


async def delete_if(
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    delete: Callable[[client.V1DeleteOptions], Awaitable[object]],
    allowed: Callable[[dict[str, Any]], bool],
    *,
    unavailable: Callable[[str], Exception],
    what: str,
) -> Deletion:
    """Delete one object if ``allowed`` says so of what ``read`` returns.

    The delete carries the uid that was checked as a precondition, so an object replaced
    between the check and the delete (by someone else, under the same name) is never deleted:
    the API answers 409 and the new object is checked again. Gone (404) counts as gone already,
    and an object already being deleted (``deletionTimestamp``, finalizers running) is not
    deleted twice. An object that keeps changing is ``unavailable`` (try again later).
    """
    for _ in range(DELETE_ATTEMPTS):
        obj = await read()
        if obj is None:
            return Deletion.GONE
        if not allowed(obj):
            return Deletion.REFUSED
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return Deletion.GONE
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=meta.get("uid")))
        try:
            await delete(options)
        except Exception as exc:
            if is_conflict(exc):
                continue  # replaced since it was read: look again
            if is_not_found(exc):
                return Deletion.GONE
            raise
        return Deletion.DELETED
    raise unavailable(f"{what} kept changing while being removed; retrying later")
