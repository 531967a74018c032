"""The KServe backend: InferenceServices through the Kubernetes API with server-side apply.

Apply is server-side apply under the field manager ``llm-ops-serving`` with ``force``
(:mod:`llmops_shared.kube.resources`): a redelivered event re-applies the same fields and
changes nothing (no new generation), fields someone edited by hand are taken back (the event
is the source of truth), and fields this worker stops sending (a canary percent after a
promote) are removed by the API server, because the field manager owned them.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client

from llmops_serving.adapters.kinds import INFERENCE_SERVICES
from llmops_serving.adapters.kube import cluster, remove_owned_object, view, without_move_mark
from llmops_serving.owners import foreign
from llmops_serving.ports import Live, Manifest, Removal
from llmops_serving.render.status import Observed, observe_inference_service
from llmops_shared.events import Phase
from llmops_shared.kube.custom import CustomObjects

VIEW = view(observe_inference_service)


class KServeBackend:
    """A :class:`~llmops_serving.ports.ServingBackend` on a cluster with KServe installed."""

    name = "kserve"
    observable = True

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 10.0) -> None:
        self.cluster = cluster(api_client, request_timeout_s)
        self._isvcs = self.cluster.objects(CustomObjects(api_client, INFERENCE_SERVICES))

    async def apply(self, manifest: Manifest) -> Observed:
        await self._isvcs.apply(manifest)
        # The status in the reply predates the controller's reconcile of this spec: report
        # Pending and let the watcher report what the controller makes of it.
        return Observed(Phase.PENDING, "applied; waiting for the KServe controller")

    async def read(self, namespace: str, name: str) -> Live | None:
        return await self._isvcs.live(namespace, name, VIEW)

    async def delete(self, namespace: str, name: str) -> bool:
        await self._isvcs.delete(namespace, name)
        # KServe puts a finalizer on InferenceServices: gone now, or still finalizing?
        return await self._isvcs.get(namespace, name) is None

    async def observe(self, namespaces: Sequence[str]) -> list[Live]:
        return await self._isvcs.observe(namespaces, VIEW)

    async def ping(self) -> None:
        """The API answers and the InferenceService resource exists (a cheap list)."""
        await self._isvcs.ping()

    async def remove_owned(self, namespace: str, name: str, *, endpoint_id: str) -> Removal:
        """Delete the endpoint's InferenceService if this platform created it for the endpoint."""
        return await remove_owned_object(self._isvcs, namespace, name, endpoint_id=endpoint_id)

    async def conflicts(self, namespace: str, name: str, *, endpoint_id: str) -> tuple[str, ...]:
        obj = await self._isvcs.get(namespace, name)
        why = foreign(obj, endpoint_id) if obj is not None else None
        return (f"InferenceService {namespace}/{name} ({why})",) if why else ()

    async def complete(
        self, manifest: Manifest, *, endpoint_id: str
    ) -> tuple[Manifest, str | None]:
        final = without_move_mark(manifest)
        await self.apply(final)
        return final, None
