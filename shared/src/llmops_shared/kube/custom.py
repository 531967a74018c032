"""The calls a worker makes on a custom resource (KServe's InferenceServices, Argo's Workflows).

Every custom resource goes through the same ``CustomObjectsApi`` methods; only its group,
version and plural differ, and which of the calls a worker makes. A worker declares that as a
:class:`CustomResource` (the kind, the plural, the verbs it uses) and gets its
:class:`~llmops_shared.kube.resources.Verbs` from :class:`CustomObjects`; a verb it did not
declare raises as a verb a kind does not define does. The Helm chart grants each worker exactly
the calls of the verbs it declares: tests/deploy/test_rbac.py reads the declarations and maps
each verb to the ``CustomObjectsApi`` method its method here calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final

from kubernetes import client

from llmops_shared.kube.api import APPLY_CONTENT_TYPE, MERGE_PATCH_CONTENT_TYPE
from llmops_shared.kube.objects import Kind
from llmops_shared.kube.resources import Call, Verbs

CUSTOM_VERBS: Final = frozenset({"read", "listing", "apply", "merge_patch", "delete", "ping"})
"""The :class:`~llmops_shared.kube.resources.Verbs` a custom resource can have here."""

_SAID: Final = {"listing": "list", "merge_patch": "merge-patch"}
"""How a verb reads in the error of a worker that does not use it."""


@dataclass(frozen=True)
class CustomResource:
    """A custom resource as one worker uses it: ``kind`` (its ``apiVersion`` is the group and
    version), ``plural`` (the resource's name in the API's paths) and the verbs (method names
    of :class:`~llmops_shared.kube.resources.Verbs`) the worker ``uses``."""

    kind: Kind
    plural: str
    uses: frozenset[str]

    def __post_init__(self) -> None:
        unknown = self.uses - CUSTOM_VERBS
        if unknown:
            raise ValueError(f"{self.kind.kind}: no such custom-object verb {sorted(unknown)}")


class CustomObjects(Verbs):
    """The verbs of one :class:`CustomResource` (those it ``uses``) on ``CustomObjectsApi``."""

    def __init__(self, api_client: client.ApiClient, resource: CustomResource) -> None:
        self.kind = resource.kind
        self._resource = resource
        self._api = client.CustomObjectsApi(api_client)

    def read(self, namespace: str, name: str) -> Call:
        return self._namespaced("read", self._api.get_namespaced_custom_object, namespace, name)

    def listing(self, namespace: str) -> Call:
        return self._namespaced("listing", self._api.list_namespaced_custom_object, namespace)

    def apply(self, namespace: str, name: str) -> Call:
        return self._namespaced(
            "apply",
            self._api.patch_namespaced_custom_object,
            namespace,
            name,
            _content_type=APPLY_CONTENT_TYPE,
        )

    def merge_patch(self, namespace: str, name: str) -> Call:
        return self._namespaced(
            "merge_patch",
            self._api.patch_namespaced_custom_object,
            namespace,
            name,
            _content_type=MERGE_PATCH_CONTENT_TYPE,
        )

    def delete(self, namespace: str, name: str) -> Call:
        return self._namespaced(
            "delete", self._api.delete_namespaced_custom_object, namespace, name
        )

    def ping(self) -> Call:
        """A cheap list: the API answers and the resource exists."""
        self._check("ping")
        kind, plural = self.kind, self._resource.plural
        return partial(
            self._api.list_cluster_custom_object, kind.group, kind.version, plural, limit=1
        )

    def _namespaced(
        self, verb: str, method: Callable[..., object], namespace: str, *name: str, **kwargs: str
    ) -> Call:
        """``method`` bound to the resource in ``namespace`` (and to the object ``name``)."""
        self._check(verb)
        kind, plural = self.kind, self._resource.plural
        return partial(method, kind.group, kind.version, namespace, plural, *name, **kwargs)

    def _check(self, verb: str) -> None:
        if verb not in self._resource.uses:
            raise self._unsupported(_SAID.get(verb, verb))
