"""The built-in backend: a plain apps/v1 Deployment and a core/v1 Service, no KServe.

Used when ``SERVING_FRAMEWORK_ENABLED=false`` (or ``SERVING_BACKEND=deployment``): the platform
keeps serving on any cluster. Both objects are server-side applied with the same field manager
as the InferenceServices; the Deployment carries the endpoint's labels and annotations and is
what the watcher observes (Ready once a replica is available).

A migration between formats (``DeploymentMigrationRequested``) reaches InferenceServices through
:meth:`DeploymentBackend.for_format`, a :class:`~llmops_serving.adapters.kserve.KServeBackend`
on the same API client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from kubernetes import client

from llmops_serving.adapters.kube import (
    call,
    created_for,
    foreign,
    is_not_found,
    live_objects,
    owned_by,
    remove_owned,
    without_migration_mark,
)
from llmops_serving.config import RenderFormat
from llmops_serving.ports import Live, Manifest, Removal, ServingBackend, ServingRejected
from llmops_serving.render import names
from llmops_serving.render.builtin import service_for
from llmops_serving.render.rollout import desired_from_live
from llmops_serving.render.status import Observed, observe_builtin
from llmops_shared.events import Phase

if TYPE_CHECKING:
    from llmops_serving.adapters.kserve import KServeBackend

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class DeploymentBackend:
    """A :class:`~llmops_serving.ports.ServingBackend` of plain Deployments and Services."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout_s: float = 10.0,
        kserve: KServeBackend | None = None,
    ) -> None:
        self._client = api_client
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._timeout = request_timeout_s
        self._kserve = kserve

    @property
    def name(self) -> str:
        return "deployment"

    @property
    def observable(self) -> bool:
        return True

    async def apply(self, manifest: Manifest) -> Observed:
        items = manifest.get("items") if manifest.get("kind") == "List" else [manifest]
        for item in items or []:
            meta = item["metadata"]
            kind = item.get("kind")
            where = f"applying {kind} {meta['namespace']}/{meta['name']}"
            patch: Callable[..., object]
            if kind == "Deployment":
                patch = self._apps.patch_namespaced_deployment
            elif kind == "Service":
                patch = self._core.patch_namespaced_service
            else:
                raise ServingRejected(f"the deployment backend cannot apply a {kind}")
            await call(
                where,
                patch,
                meta["name"],
                meta["namespace"],
                item,
                field_manager=names.FIELD_MANAGER,
                force=True,
                _content_type=APPLY_CONTENT_TYPE,
                _request_timeout=self._timeout,
            )
        return Observed(Phase.PENDING, "applied; waiting for the Deployment to become available")

    async def read(self, namespace: str, name: str) -> Manifest | None:
        deployment = await self._get(self._apps.read_namespaced_deployment, namespace, name)
        if deployment is None:
            return None
        items = [desired_from_live(deployment)]
        service = await self._get(self._core.read_namespaced_service, namespace, name)
        owner = ((deployment.get("metadata") or {}).get("labels") or {}).get(
            names.ENDPOINT_ID_LABEL
        )
        if service is not None and (owner is None or created_for(service, str(owner))):
            # (not KServe's own Service of the name, during a move from an InferenceService)
            items.append(desired_from_live(service))
        return {"apiVersion": "v1", "kind": "List", "items": items}

    async def delete(self, namespace: str, name: str) -> bool:
        for remove in (
            self._core.delete_namespaced_service,
            self._apps.delete_namespaced_deployment,
        ):
            try:
                await call(
                    f"deleting {namespace}/{name}",
                    remove,
                    name,
                    namespace,
                    absent_ok=True,
                    _request_timeout=self._timeout,
                )
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        return await self._get(self._apps.read_namespaced_deployment, namespace, name) is None

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        found: list[Live] = []
        for namespace in namespaces:
            try:
                listing = await call(
                    f"listing Deployments in {namespace}",
                    self._apps.list_namespaced_deployment,
                    namespace,
                    label_selector=names.MANAGED_SELECTOR,
                    absent_ok=True,
                    _request_timeout=self._timeout,
                )
            except Exception as exc:
                if is_not_found(exc):
                    continue
                raise
            found += live_objects(
                self._plain(listing),
                namespace=namespace,
                api_version="apps/v1",
                kind="Deployment",
                observe=observe_builtin,
            )
        return found

    async def ping(self) -> None:
        await call(
            "checking readiness", self._core.get_api_resources, _request_timeout=self._timeout
        )

    def for_format(self, target: RenderFormat) -> ServingBackend:
        return self if target is RenderFormat.BUILTIN else self._inference_services()

    async def remove_other_format(
        self, namespace: str, name: str, *, keep: RenderFormat, endpoint_id: str
    ) -> Removal:
        if keep is RenderFormat.BUILTIN:
            return await self._inference_services().remove_owned(
                namespace, name, endpoint_id=endpoint_id
            )
        return await self.remove_owned(namespace, name, endpoint_id=endpoint_id)

    async def status(self, namespace: str, name: str) -> Live | None:
        deployment = await self._get(self._apps.read_namespaced_deployment, namespace, name)
        if deployment is None:
            return None
        manifest = await self.read(namespace, name)
        return Live(
            name=name,
            namespace=namespace,
            endpoint_id=((deployment.get("metadata") or {}).get("labels") or {}).get(
                names.ENDPOINT_ID_LABEL
            ),
            manifest=manifest or desired_from_live(deployment),
            observed=observe_builtin(deployment),
        )

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """A Deployment or a Service of the name that is not the endpoint's. KServe's own
        Service of the endpoint's InferenceService (an ``ExternalName`` one with an
        ownerReference to it) is not: it goes with the InferenceService, and the built-in
        Service is applied only after that (:meth:`complete`)."""
        found: list[str] = []
        deployment = await self._get(self._apps.read_namespaced_deployment, namespace, name)
        if deployment is not None and (why := foreign(deployment, endpoint_id)):
            found.append(f"Deployment {namespace}/{name} ({why})")
        service = await self._get(self._core.read_namespaced_service, namespace, name)
        if service is not None and (why := foreign(service, endpoint_id)):
            isvc = await self._inference_services().get_raw(namespace, name)
            ours = isvc is not None and created_for(isvc, endpoint_id)
            if not (ours and owned_by(service, isvc)):
                found.append(f"Service {namespace}/{name} ({why})")
        return tuple(found)

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        """Apply the Deployment without the migration mark and the Service in front of it, once
        no other Service holds the name (KServe's, until it is garbage-collected)."""
        items = manifest.get("items") if manifest.get("kind") == "List" else [manifest]
        deployment = next(i for i in items or [] if i.get("kind") == "Deployment")
        deployment = without_migration_mark(deployment)
        meta = deployment["metadata"]
        final: Manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [deployment, service_for(deployment)],
        }
        service = await self._get(
            self._core.read_namespaced_service, meta["namespace"], meta["name"]
        )
        if service is not None and (why := foreign(service, endpoint_id)):
            return final, (
                f"waiting for Service {meta['namespace']}/{meta['name']} ({why}) to be removed "
                "before the built-in Service takes its name"
            )
        await self.apply(final)
        return final, None

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Delete the endpoint's Service, then its Deployment, each only if this platform created
        it for the endpoint (the Service first: no traffic is sent to a Deployment going away)."""
        removal = Removal()
        for kind, read, delete in (
            ("Service", self._core.read_namespaced_service, self._core.delete_namespaced_service),
            (
                "Deployment",
                self._apps.read_namespaced_deployment,
                self._apps.delete_namespaced_deployment,
            ),
        ):
            removal += await remove_owned(
                f"{kind} {namespace}/{name}",
                partial(self._get, read, namespace, name),
                partial(
                    self._delete_with,
                    delete,
                    f"deleting {kind} {namespace}/{name}",
                    namespace,
                    name,
                ),
                endpoint_id=endpoint_id,
            )
        return removal

    async def _delete_with(
        self,
        delete: Callable[..., object],
        where: str,
        namespace: str,
        name: str,
        options: client.V1DeleteOptions,
    ) -> object:
        return await call(
            where,
            delete,
            name,
            namespace,
            body=options,
            absent_ok=True,
            _request_timeout=self._timeout,
        )

    def _inference_services(self) -> KServeBackend:
        if self._kserve is None:
            # imported here: kserve.py builds its own DeploymentBackend from this module
            from llmops_serving.adapters.kserve import KServeBackend

            self._kserve = KServeBackend(
                self._client, request_timeout_s=self._timeout, builtin=self
            )
        return self._kserve

    async def _get(self, read: Any, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await call(
                f"reading {namespace}/{name}",
                read,
                name,
                namespace,
                absent_ok=True,
                _request_timeout=self._timeout,
            )
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        return self._plain(obj)

    def _plain(self, model: object) -> dict[str, Any]:
        """A typed client model as the plain dict the API sent (camelCase keys)."""
        return cast(dict[str, Any], self._client.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]
