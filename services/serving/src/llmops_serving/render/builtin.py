"""The built-in serving objects (``SERVING_FRAMEWORK_ENABLED=false``): a plain apps/v1
Deployment running the serve image and a core/v1 Service in front of it.

Without KServe there is no storage initializer, so an init container copies the model from
``storage_uri`` into a shared ``emptyDir`` first, using KServe's standalone storage-initializer
image (it speaks s3://, gs://, https:// and pvc:// and needs no KServe controller). There is
no traffic splitting: canary requests are refused before rendering.
"""

from __future__ import annotations

from typing import Any, Final

from llmops_serving.render import names
from llmops_serving.render.metadata import object_annotations, object_labels
from llmops_serving.render.model_server import MODEL_DIR, model_server
from llmops_serving.render.request import RenderOptions, ServeRequest
from llmops_serving.render.rollout import RolloutRefused, RolloutState, canary_refusal
from llmops_shared.specs import RolloutStrategy

STORAGE_INITIALIZER_IMAGE: Final = "kserve/storage-initializer:v0.15.2"
HTTP_PORT: Final = 8080
SERVICE_PORT: Final = 80


def selector(request: ServeRequest) -> dict[str, str]:
    """Pod selector: stable for the endpoint's lifetime (a Deployment's selector is immutable)."""
    return {names.NAME_LABEL: request.name, names.ENDPOINT_ID_LABEL: request.endpoint_id}


def render_builtin(request: ServeRequest, options: RenderOptions) -> dict[str, Any]:
    """A ``v1 List`` of the Deployment and the Service (applied and written together)."""
    if request.spec.rollout.strategy is RolloutStrategy.CANARY:
        raise RolloutRefused(canary_refusal(None))
    server = model_server(request.spec, model_name=request.name, options=options)
    meta_labels = object_labels(request)
    meta_annotations = object_annotations(request, server.image, state=RolloutState.FULL.value)
    metadata = {
        "name": request.name,
        "namespace": request.namespace,
        "labels": meta_labels,
        "annotations": meta_annotations,
    }
    pod_labels = {**meta_labels, **selector(request)}
    container = {
        "name": "model-server",
        "image": server.image.image,
        "args": [f"--model_dir={MODEL_DIR}", f"--http_port={HTTP_PORT}", *server.args],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "resources": {k: dict(v) for k, v in server.resources.items()},
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{request.name}", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR, "readOnly": True}],
    }
    init = {
        "name": "storage-initializer",
        "image": STORAGE_INITIALIZER_IMAGE,
        "args": [request.storage_uri, MODEL_DIR],
        "volumeMounts": [{"name": "model", "mountPath": MODEL_DIR}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(request)},
            # blue-green without a second Deployment: the new pod must be ready before the old
            # one goes, so clients never see the endpoint without a server
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "initContainers": [init],
                    "containers": [container],
                    "volumes": [{"name": "model", "emptyDir": {}}],
                },
            },
        },
    }
    service = service_for(deployment)
    return {"apiVersion": "v1", "kind": "List", "items": [deployment, service]}


def service_for(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Service in front of a built-in ``deployment`` (rendered or as applied): same name,
    labels and annotations, its pod selector, and an explicit ``ClusterIP`` type (KServe's own
    ``Service`` of an InferenceService is an ``ExternalName`` one of the same name)."""
    meta = deployment.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != names.MIGRATING_FROM_ANNOTATION
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": annotations,
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(
                ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            ),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def service_url(name: str, namespace: str) -> str:
    """The in-cluster URL of the built-in Service."""
    return f"http://{name}.{namespace}.svc.cluster.local"
