"""The KServe backend: InferenceServices through the Kubernetes API with server-side apply.

Apply is ``PATCH`` with ``application/apply-patch+yaml``, field manager ``llm-ops-serving`` and
``force=True``: the object is created if missing and updated otherwise in one idempotent call,
so a redelivered event re-applies the same fields and changes nothing (no new generation).
``force`` takes over fields someone edited by hand: the event is the source of truth. Fields
this worker stops sending (a canary percent after a promote) are removed by the API server,
because the field manager owned them.

A migration between formats (``DeploymentMigrationRequested``) reaches the built-in
Deployment + Service through :meth:`KServeBackend.for_format`, a
:class:`~llmops_serving.adapters.deployment.DeploymentBackend` on the same API client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from kubernetes import client

from llmops_serving.adapters.deployment import DeploymentBackend
from llmops_serving.adapters.kube import (
    call,
    foreign,
    is_not_found,
    live_objects,
    remove_owned,
    without_migration_mark,
)
from llmops_serving.config import RenderFormat
from llmops_serving.ports import Live, Manifest, Removal, ServingBackend
from llmops_serving.render import names
from llmops_serving.render.rollout import desired_from_live
from llmops_serving.render.status import Observed, observe_inference_service
from llmops_shared.events import Phase

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class KServeBackend:
    """A :class:`~llmops_serving.ports.ServingBackend` on a cluster with KServe installed."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout_s: float = 10.0,
        builtin: DeploymentBackend | None = None,
    ) -> None:
        self._api = client.CustomObjectsApi(api_client)
        self._timeout = request_timeout_s
        self._builtin = builtin or DeploymentBackend(
            api_client, request_timeout_s=request_timeout_s, kserve=self
        )

    @property
    def name(self) -> str:
        return "kserve"

    @property
    def observable(self) -> bool:
        return True

    async def apply(self, manifest: Manifest) -> Observed:
        meta = manifest["metadata"]
        where = f"applying InferenceService {meta['namespace']}/{meta['name']}"
        await call(
            where,
            self._api.patch_namespaced_custom_object,
            names.KSERVE_GROUP,
            names.KSERVE_VERSION,
            meta["namespace"],
            names.KSERVE_PLURAL,
            meta["name"],
            manifest,
            field_manager=names.FIELD_MANAGER,
            force=True,
            _content_type=APPLY_CONTENT_TYPE,
            _request_timeout=self._timeout,
        )
        # The status in the reply predates the controller's reconcile of this spec: report
        # Pending and let the watcher report what the controller makes of it.
        return Observed(Phase.PENDING, "applied; waiting for the KServe controller")

    async def read(self, namespace: str, name: str) -> Manifest | None:
        obj = await self._get(namespace, name)
        return desired_from_live(obj) if obj is not None else None

    async def delete(self, namespace: str, name: str) -> bool:
        where = f"deleting InferenceService {namespace}/{name}"
        try:
            await call(
                where,
                self._api.delete_namespaced_custom_object,
                names.KSERVE_GROUP,
                names.KSERVE_VERSION,
                namespace,
                names.KSERVE_PLURAL,
                name,
                absent_ok=True,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return True
            raise
        # KServe puts a finalizer on InferenceServices: gone now, or still finalizing?
        return await self._get(namespace, name) is None

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            try:
                listing = await call(
                    f"listing InferenceServices in {namespace}",
                    self._api.list_namespaced_custom_object,
                    names.KSERVE_GROUP,
                    names.KSERVE_VERSION,
                    namespace,
                    names.KSERVE_PLURAL,
                    label_selector=names.MANAGED_SELECTOR,
                    absent_ok=True,
                    _request_timeout=self._timeout,
                )
            except Exception as exc:
                if is_not_found(exc):
                    continue
                raise
            found += live_objects(
                cast(dict[str, Any], listing),
                namespace=namespace,
                api_version=names.KSERVE_API_VERSION,
                kind="InferenceService",
                observe=observe_inference_service,
            )
        return found

    async def ping(self) -> None:
        """The API answers and the InferenceService resource exists (a cheap list)."""
        await call(
            "checking readiness",
            self._api.list_cluster_custom_object,
            names.KSERVE_GROUP,
            names.KSERVE_VERSION,
            names.KSERVE_PLURAL,
            limit=1,
            _request_timeout=self._timeout,
        )

    def for_format(self, target: RenderFormat) -> ServingBackend:
        return self if target is RenderFormat.KSERVE else self._builtin

    async def remove_other_format(
        self, namespace: str, name: str, *, keep: RenderFormat, endpoint_id: str
    ) -> Removal:
        if keep is RenderFormat.KSERVE:
            return await self._builtin.remove_owned(namespace, name, endpoint_id=endpoint_id)
        return await self.remove_owned(namespace, name, endpoint_id=endpoint_id)

    async def status(self, namespace: str, name: str) -> Live | None:
        obj = await self._get(namespace, name)
        if obj is None:
            return None
        obj.setdefault("apiVersion", names.KSERVE_API_VERSION)
        obj.setdefault("kind", "InferenceService")
        return Live(
            name=name,
            namespace=namespace,
            endpoint_id=((obj.get("metadata") or {}).get("labels") or {}).get(
                names.ENDPOINT_ID_LABEL
            ),
            manifest=desired_from_live(obj),
            observed=observe_inference_service(obj),
        )

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        obj = await self._get(namespace, name)
        why = foreign(obj, endpoint_id) if obj is not None else None
        return (f"InferenceService {namespace}/{name} ({why})",) if why else ()

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        final = without_migration_mark(manifest)
        await self.apply(final)
        return final, None

    async def get_raw(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The live InferenceService as the API returns it (``None`` when there is none)."""
        return await self._get(namespace, name)

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Delete the endpoint's InferenceService if this platform created it for the endpoint."""
        where = f"deleting InferenceService {namespace}/{name}"

        async def delete(options: client.V1DeleteOptions) -> object:
            return await call(
                where,
                self._api.delete_namespaced_custom_object,
                names.KSERVE_GROUP,
                names.KSERVE_VERSION,
                namespace,
                names.KSERVE_PLURAL,
                name,
                body=options,
                absent_ok=True,
                _request_timeout=self._timeout,
            )

        return await remove_owned(
            f"InferenceService {namespace}/{name}",
            lambda: self._get(namespace, name),
            delete,
            endpoint_id=endpoint_id,
        )

    async def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await call(
                f"reading InferenceService {namespace}/{name}",
                self._api.get_namespaced_custom_object,
                names.KSERVE_GROUP,
                names.KSERVE_VERSION,
                namespace,
                names.KSERVE_PLURAL,
                name,
                absent_ok=True,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        return cast(dict[str, Any], obj)
