"""The built-in backend: a plain apps/v1 Deployment and a core/v1 Service, no KServe.

Used when ``SERVING_FRAMEWORK_ENABLED=false`` (or ``SERVING_BACKEND=deployment``): the platform
keeps serving on any cluster. Both objects are server-side applied with the same field manager
as the InferenceServices; the Deployment carries the endpoint's labels and annotations and is
what the watcher observes (Ready once a replica is available).
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client

from llmops_serving.adapters.kinds import INFERENCE_SERVICES, Deployments, Services
from llmops_serving.adapters.kube import cluster, remove_owned_object, view, without_move_mark
from llmops_serving.owners import created_for, foreign, owned_by
from llmops_serving.ports import Live, Manifest, Removal, ServingRejected
from llmops_serving.render.builtin import service_for
from llmops_serving.render.rollout import desired_from_live
from llmops_serving.render.status import Observed, observe_builtin
from llmops_shared.events import Phase
from llmops_shared.kube.custom import CustomObjects
from llmops_shared.kube.objects import items_of

VIEW = view(observe_builtin)


class DeploymentBackend:
    """A :class:`~llmops_serving.ports.ServingBackend` of plain Deployments and Services."""

    name = "deployment"
    observable = True

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self.cluster = cluster(api_client, request_timeout_s)
        self._deployments = self.cluster.objects(Deployments(api_client))
        self._services = self.cluster.objects(Services(api_client))
        # read only: whether a Service of the name is KServe's own for the endpoint
        self._isvcs = self.cluster.objects(CustomObjects(api_client, INFERENCE_SERVICES))

    async def apply(self, manifest: Manifest) -> Observed:
        kinds = {"Deployment": self._deployments, "Service": self._services}
        for item in items_of(manifest):
            objects = kinds.get(str(item.get("kind")))
            if objects is None:
                raise ServingRejected(f"the deployment backend cannot apply a {item.get('kind')}")
            await objects.apply(item)
        return Observed(Phase.PENDING, "applied; waiting for the Deployment to become available")

    async def read(self, namespace: str, name: str) -> Live | None:
        """The Deployment as observed, reported with its Service: a ``List`` of both (the
        Service only when it is the endpoint's, not KServe's own during a move from an
        InferenceService)."""
        live = await self._deployments.live(namespace, name, VIEW)
        if live is None:
            return None
        items = [live.manifest]
        service = await self._services.get(namespace, name)
        if service is not None and (live.owner is None or created_for(service, str(live.owner))):
            items.append(desired_from_live(service))
        manifest = {"apiVersion": "v1", "kind": "List", "items": items}
        return Live(live.name, live.namespace, live.owner, manifest, live.observed)

    async def delete(self, namespace: str, name: str) -> bool:
        await self._services.delete(namespace, name)
        await self._deployments.delete(namespace, name)
        return await self._deployments.get(namespace, name) is None

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        return await self._deployments.observe(namespaces, VIEW)

    async def ping(self) -> None:
        await self._services.ping()

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Delete the endpoint's Service, then its Deployment, each only if this platform created
        it for the endpoint (the Service first: no traffic is sent to a Deployment going away)."""
        removal = Removal()
        for objects in (self._services, self._deployments):
            removal += await remove_owned_object(objects, namespace, name, endpoint_id=endpoint_id)
        return removal

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        """A Deployment or a Service of the name that is not the endpoint's. KServe's own
        Service of the endpoint's InferenceService (an ``ExternalName`` one with an
        ownerReference to it) is not: it goes with the InferenceService, and the built-in
        Service is applied only after that (:meth:`complete`)."""
        found: list[str] = []
        deployment = await self._deployments.get(namespace, name)
        if deployment is not None and (why := foreign(deployment, endpoint_id)):
            found.append(f"Deployment {namespace}/{name} ({why})")
        service = await self._services.get(namespace, name)
        if service is not None and (why := foreign(service, endpoint_id)):
            isvc = await self._isvcs.get(namespace, name)
            ours = isvc is not None and created_for(isvc, endpoint_id)
            if not (ours and owned_by(service, isvc)):
                found.append(f"Service {namespace}/{name} ({why})")
        return tuple(found)

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        """Apply the Deployment without the move mark and the Service in front of it, once no
        other Service holds the name (KServe's, until it is garbage-collected)."""
        deployment = next(i for i in items_of(manifest) if i.get("kind") == "Deployment")
        deployment = without_move_mark(deployment)
        meta = deployment["metadata"]
        final: Manifest = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [deployment, service_for(deployment)],
        }
        service = await self._services.get(meta["namespace"], meta["name"])
        if service is not None and (why := foreign(service, endpoint_id)):
            return final, (
                f"waiting for Service {meta['namespace']}/{meta['name']} ({why}) to be removed "
                "before the built-in Service takes its name"
            )
        await self.apply(final)
        return final, None
