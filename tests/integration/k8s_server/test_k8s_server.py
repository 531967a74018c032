"""The Kubernetes API test double (tests/support/k8s_server.py) against the real client.

Every test drives the real ``kubernetes`` 37.x client (``CustomObjectsApi``, ``AppsV1Api``,
``CoreV1Api``) over HTTP, so these tests also pin down what that client sends on the wire.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client import ApiException

from support.k8s_server import KubeApiServer

pytestmark = pytest.mark.integration

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "inferenceservices"
NS = "llmops"
JSON = {"Content-Type": "application/json"}
APPLY = "application/apply-patch+yaml"


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer() as srv:
        yield srv


@pytest.fixture
def api(server: KubeApiServer) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(server.api_client())


def isvc(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"app": "llm", "model": name}},
        "spec": {"predictor": {"minReplicas": 1, "model": {"storageUri": "s3://m/1"}}, **spec},
    }


def create(api: kubernetes.client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = api.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, body, _headers=JSON
    )
    return result


def apply(
    api: kubernetes.client.CustomObjectsApi,
    body: dict[str, Any],
    manager: str = "serving",
    force: bool | None = None,
) -> Any:
    return api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        body["metadata"]["name"],
        body,
        field_manager=manager,
        force=force,
        _content_type=APPLY,
    )


def error_of(excinfo: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(excinfo.value.body)
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == excinfo.value.status
    return body


def test_create_get_and_list_with_label_selector(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    created = create(api, isvc("a"))
    create(api, isvc("b"))
    api.create_namespaced_custom_object(GROUP, VERSION, "other", PLURAL, isvc("c"))

    meta = created["metadata"]
    assert meta["namespace"] == NS
    assert meta["generation"] == 1
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert meta["managedFields"][0]["operation"] == "Update"

    fetched = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")
    assert fetched["spec"] == created["spec"]
    assert server.get(API_VERSION, PLURAL, NS, "a") == fetched

    listed = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    assert listed["kind"] == "InferenceServiceList"
    assert listed["apiVersion"] == API_VERSION
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]
    selected = api.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, label_selector="app=llm,model=b"
    )
    assert [i["metadata"]["name"] for i in selected["items"]] == ["b"]
    assert (
        api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="model!=b")[
            "items"
        ][0]["metadata"]["name"]
        == "a"
    )
    assert [o["metadata"]["name"] for o in server.list(API_VERSION, PLURAL, "other")] == ["c"]

    # The 37.x client sends no Content-Type on create unless told to; both are accepted.
    posts = [r for r in server.requests if r[0] == "POST"]
    assert posts[0][2] == "application/json"
    assert posts[2][2] is None


def test_create_conflicts_and_invalid(api: kubernetes.client.CustomObjectsApi) -> None:
    create(api, isvc("a"))
    with pytest.raises(ApiException) as excinfo:
        create(api, isvc("a"))
    assert excinfo.value.status == 409
    body = error_of(excinfo)
    assert body["reason"] == "AlreadyExists"
    assert body["details"] == {"name": "a", "group": GROUP, "kind": PLURAL}

    nameless = isvc("x")
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException) as excinfo:
        create(api, nameless)
    assert excinfo.value.status == 422
    assert error_of(excinfo)["reason"] == "Invalid"


def test_replace_with_stale_resource_version_conflicts(
    api: kubernetes.client.CustomObjectsApi,
) -> None:
    created = create(api, isvc("a"))
    body = dict(created, spec={"predictor": {"minReplicas": 3}})
    replaced = api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a", body)
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["spec"] == {"predictor": {"minReplicas": 3}}

    with pytest.raises(ApiException) as excinfo:  # body still carries the old resourceVersion
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a", body)
    assert excinfo.value.status == 409
    assert error_of(excinfo)["reason"] == "Conflict"

    unversioned = isvc("a")
    with pytest.raises(ApiException) as excinfo:  # custom resources need a resourceVersion
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a", unversioned)
    assert excinfo.value.status == 422

    with pytest.raises(ApiException) as excinfo:
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "zz", isvc("zz"))
    assert excinfo.value.status == 404


def test_apply_creates_then_merges(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    # 201 on create: the 37.x client maps only 200 for PATCH, so it returns None here.
    assert apply(api, isvc("a"), force=True) is None
    method, path, content_type = server.requests[-1]
    assert method == "PATCH"
    assert path.endswith("/inferenceservices/a?fieldManager=serving&force=true")
    assert content_type == APPLY
    stored = server.get(API_VERSION, PLURAL, NS, "a")
    assert stored is not None
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["managedFields"][0]["manager"] == "serving"
    assert stored["metadata"]["managedFields"][0]["operation"] == "Apply"

    update = isvc("a")
    update["spec"]["predictor"]["model"] = {"storageUri": "s3://m/2"}
    update["spec"]["predictor"]["args"] = ["--x"]
    merged = apply(api, update)
    assert merged["spec"]["predictor"] == {
        "minReplicas": 1,
        "model": {"storageUri": "s3://m/2"},
        "args": ["--x"],
    }
    assert merged["metadata"]["generation"] == 2

    update["spec"]["predictor"]["args"] = ["--y"]  # lists are replaced, not appended
    assert apply(api, update)["spec"]["predictor"]["args"] == ["--y"]

    same = apply(api, update)  # a no-op apply changes nothing
    assert (
        same["metadata"]["resourceVersion"]
        == server.get(API_VERSION, PLURAL, NS, "a")["metadata"]["resourceVersion"]
    )
    assert same["metadata"]["generation"] == 3


def test_apply_body_may_be_yaml_text(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    # The 37.x client validates the body as dict or list, so it always sends JSON for apply;
    # kubectl sends YAML. Both are accepted: send YAML text over plain HTTP.
    create(api, isvc("a"))
    text = (
        f"apiVersion: {API_VERSION}\nkind: InferenceService\nmetadata:\n  name: a\n"
        "spec:\n  predictor:\n    minReplicas: 5\n"
    )
    request = urllib.request.Request(
        f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/a"
        "?fieldManager=kubectl&force=true",
        data=text.encode(),
        method="PATCH",
        headers={"Content-Type": APPLY},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        result = json.loads(response.read())
    assert result["spec"]["predictor"]["minReplicas"] == 5
    assert result["spec"]["predictor"]["model"] == {"storageUri": "s3://m/1"}


def test_apply_without_field_manager_is_rejected(api: kubernetes.client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as excinfo:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "a", isvc("a"), _content_type=APPLY
        )
    assert excinfo.value.status == 400
    body = error_of(excinfo)
    assert body["reason"] == "BadRequest"
    assert body["message"] == "fieldManager is required for apply requests"


def test_apply_removes_fields_the_manager_stopped_applying(
    api: kubernetes.client.CustomObjectsApi,
) -> None:
    first = isvc("a", canaryTrafficPercent=10)
    first["metadata"]["annotations"] = {"llmops/rev": "1"}
    apply(api, first)
    # Another manager owns its own label; it must survive.
    apply(
        api,
        {
            "apiVersion": API_VERSION,
            "kind": "InferenceService",
            "metadata": {"name": "a", "labels": {"team": "ml"}},
        },
        manager="labeller",
    )

    second = isvc("a")  # no canaryTrafficPercent, no annotations, no model label
    del second["metadata"]["labels"]["model"]
    result = apply(api, second)
    assert "canaryTrafficPercent" not in result["spec"]
    assert "annotations" not in result["metadata"]
    assert result["metadata"]["labels"] == {"app": "llm", "team": "ml"}
    managers = {e["manager"]: e["fieldsV1"] for e in result["metadata"]["managedFields"]}
    assert "f:canaryTrafficPercent" not in managers["serving"]["f:spec"]
    assert managers["labeller"] == {"f:metadata": {"f:labels": {"f:team": {}}}}


def test_apply_conflict_between_managers_and_force(
    api: kubernetes.client.CustomObjectsApi,
) -> None:
    apply(api, isvc("a"))
    rival = isvc("a")
    rival["spec"]["predictor"]["minReplicas"] = 4

    with pytest.raises(ApiException) as excinfo:
        apply(api, rival, manager="autoscaler")
    assert excinfo.value.status == 409
    body = error_of(excinfo)
    assert body["reason"] == "Conflict"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "serving"',
            "field": ".spec.predictor.minReplicas",
        }
    ]

    # Same values are shared ownership, not a conflict.
    assert apply(api, isvc("a"), manager="observer")["spec"]["predictor"]["minReplicas"] == 1

    won = apply(api, rival, manager="autoscaler", force=True)
    assert won["spec"]["predictor"]["minReplicas"] == 4
    owned = {e["manager"]: e["fieldsV1"] for e in won["metadata"]["managedFields"]}
    assert "f:minReplicas" in owned["autoscaler"]["f:spec"]["f:predictor"]
    assert "f:minReplicas" not in owned["serving"]["f:spec"]["f:predictor"]

    # The loser re-applying its old value now conflicts with the winner.
    with pytest.raises(ApiException) as excinfo:
        apply(api, isvc("a"))
    assert excinfo.value.status == 409


def test_apply_conflicts_with_an_update_manager(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    create(api, isvc("a"))  # owned by the client's User-Agent prefix, as a real server does
    changed = isvc("a")
    changed["spec"]["predictor"]["minReplicas"] = 2
    with pytest.raises(ApiException) as excinfo:
        apply(api, changed)
    assert 'conflict with "OpenAPI-Generator"' in error_of(excinfo)["message"]
    assert apply(api, changed, force=True)["spec"]["predictor"]["minReplicas"] == 2


def test_merge_patch(api: kubernetes.client.CustomObjectsApi) -> None:
    create(api, isvc("a", canaryTrafficPercent=10))
    patched = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "a",
        {"metadata": {"labels": {"model": None}}, "spec": {"canaryTrafficPercent": None}},
    )  # the client's default PATCH content type for custom objects is merge-patch+json
    assert patched["metadata"]["labels"] == {"app": "llm"}
    assert "canaryTrafficPercent" not in patched["spec"]
    assert patched["spec"]["predictor"]["minReplicas"] == 1
    assert patched["metadata"]["generation"] == 2

    with pytest.raises(ApiException) as excinfo:
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "zz", {"spec": {}})
    assert excinfo.value.status == 404
    assert error_of(excinfo)["reason"] == "NotFound"


def test_json_patch_and_strategic_merge_refused(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    create(api, isvc("a"))
    ops = [
        {"op": "replace", "path": "/spec/predictor/minReplicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/stage", "value": "canary"},
        {"op": "remove", "path": "/metadata/labels/model"},
    ]
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "a", ops, _content_type="application/json-patch+json"
    )
    assert server.requests[-1][2] == "application/json-patch+json"
    assert patched["spec"]["predictor"]["minReplicas"] == 2
    assert patched["metadata"]["labels"] == {"app": "llm", "stage": "canary"}

    with pytest.raises(ApiException) as excinfo:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            "a",
            [{"op": "remove", "path": "/spec/nothing"}],
            _content_type="application/json-patch+json",
        )
    assert excinfo.value.status == 422

    # With a dict body the client silently turns json-patch into strategic merge patch,
    # which a real API server refuses for custom resources.
    with pytest.raises(ApiException) as excinfo:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            "a",
            {"spec": {}},
            _content_type="application/json-patch+json",
        )
    assert server.requests[-1][2] == "application/strategic-merge-patch+json"
    assert excinfo.value.status == 415


def test_status_subresource(server: KubeApiServer, api: kubernetes.client.CustomObjectsApi) -> None:
    created = create(api, dict(isvc("a"), status={"ignored": True}))
    assert "status" not in created  # the main endpoint ignores .status

    ready = {"conditions": [{"type": "Ready", "status": "True"}], "url": "http://a.llmops"}
    server.set_status(API_VERSION, PLURAL, NS, "a", ready)
    fetched = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")
    assert fetched["status"] == ready
    assert fetched["metadata"]["generation"] == 1
    assert int(fetched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert api.get_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "a")["status"] == (
        ready
    )

    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, "a", {"status": {"url": None}, "spec": {"ignored": 1}}
    )
    assert patched["status"] == {"conditions": ready["conditions"]}
    assert "ignored" not in patched["spec"]
    assert patched["metadata"]["generation"] == 1

    spec_patch = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "a", {"status": {"url": "x"}, "spec": {"x": 1}}
    )
    assert spec_patch["status"] == patched["status"]
    assert spec_patch["metadata"]["generation"] == 2


def test_delete_then_not_found(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    create(api, isvc("a"))
    deleted = api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")
    assert deleted["kind"] == "Status"
    assert deleted["status"] == "Success"
    assert server.get(API_VERSION, PLURAL, NS, "a") is None

    for call in (api.get_namespaced_custom_object, api.delete_namespaced_custom_object):
        with pytest.raises(ApiException) as excinfo:
            call(GROUP, VERSION, NS, PLURAL, "a")
        assert excinfo.value.status == 404
        body = error_of(excinfo)
        assert body["reason"] == "NotFound"
        assert body["details"]["name"] == "a"
        assert body["message"] == f'{PLURAL}.{GROUP} "a" not found'


def test_fail_next_injects_then_recovers(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    create(api, isvc("a"))
    server.fail_next("GET", "/inferenceservices/a", 500, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as excinfo:
            api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")
        assert excinfo.value.status == 500
        assert error_of(excinfo)["reason"] == "InternalError"
    assert api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")["metadata"]["name"]

    server.fail_next("PATCH", "fieldManager=serving", 503, reason="ServiceUnavailable")
    with pytest.raises(ApiException) as excinfo:
        apply(api, isvc("a"), force=True)
    assert excinfo.value.status == 503
    assert apply(api, isvc("a"), force=True)["metadata"]["name"] == "a"
    assert sum(1 for r in server.requests if r[0] == "GET") == 3


def test_watch_is_refused(api: kubernetes.client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as excinfo:
        api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, watch=True)
    assert excinfo.value.status == 400
    assert error_of(excinfo)["message"] == "watch is not supported by this test server"


def test_dry_run_does_not_persist(
    server: KubeApiServer, api: kubernetes.client.CustomObjectsApi
) -> None:
    result = api.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, isvc("a"), dry_run="All", _headers=JSON
    )
    assert result["metadata"]["name"] == "a"
    assert server.get(API_VERSION, PLURAL, NS, "a") is None


def test_deployment_round_trip(server: KubeApiServer) -> None:
    from kubernetes.client import (
        V1Container,
        V1Deployment,
        V1DeploymentSpec,
        V1LabelSelector,
        V1ObjectMeta,
        V1PodSpec,
        V1PodTemplateSpec,
    )

    apps = kubernetes.client.AppsV1Api(server.api_client())
    labels = {"app": "worker"}
    deployment = V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=V1ObjectMeta(name="worker", labels=labels),
        spec=V1DeploymentSpec(
            replicas=1,
            selector=V1LabelSelector(match_labels=labels),
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels),
                spec=V1PodSpec(containers=[V1Container(name="w", image="worker:1")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(NS, deployment)
    assert isinstance(created, V1Deployment)
    assert created.metadata.generation == 1
    assert created.metadata.uid

    patched = apps.patch_namespaced_deployment("worker", NS, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    assert patched.metadata.generation == 2
    assert server.requests[-1][2] == "application/strategic-merge-patch+json"

    server.set_status("apps/v1", "deployments", NS, "worker", {"readyReplicas": 3, "replicas": 3})
    read = apps.read_namespaced_deployment_status("worker", NS)
    assert read.status.ready_replicas == 3
    assert read.metadata.generation == 2

    read.spec.template.spec.containers[0].image = "worker:2"
    replaced = apps.replace_namespaced_deployment("worker", NS, read)
    assert replaced.spec.template.spec.containers[0].image == "worker:2"
    assert replaced.metadata.generation == 3

    listed = apps.list_namespaced_deployment(NS, label_selector="app=worker")
    assert [d.metadata.name for d in listed.items] == ["worker"]
    deleted = apps.delete_namespaced_deployment("worker", NS)  # 37.x: a plain dict
    assert deleted["kind"] == "Status"
    assert deleted["status"] == "Success"
    with pytest.raises(ApiException) as excinfo:
        apps.read_namespaced_deployment("worker", NS)
    assert excinfo.value.status == 404
    assert error_of(excinfo)["details"] == {
        "name": "worker",
        "group": "apps",
        "kind": "deployments",
    }


def test_service_round_trip(server: KubeApiServer) -> None:
    from kubernetes.client import V1ObjectMeta, V1Service, V1ServicePort, V1ServiceSpec

    core = kubernetes.client.CoreV1Api(server.api_client())
    service = V1Service(
        metadata=V1ObjectMeta(name="worker", labels={"app": "worker"}),
        spec=V1ServiceSpec(selector={"app": "worker"}, ports=[V1ServicePort(port=8080)]),
    )  # no apiVersion/kind: a built-in kind is defaulted from the URL
    created = core.create_namespaced_service(NS, service)
    assert created.kind == "Service"
    assert created.spec.ports[0].port == 8080
    assert server.requests[-1][1] == f"/api/v1/namespaces/{NS}/services"

    read = core.read_namespaced_service("worker", NS)
    assert read.metadata.resource_version == created.metadata.resource_version
    listed = core.list_namespaced_service(NS, label_selector="app=worker")
    assert [s.metadata.name for s in listed.items] == ["worker"]
    assert server.list("v1", "services", NS)[0]["spec"]["selector"] == {"app": "worker"}

    deleted = core.delete_namespaced_service("worker", NS)  # services answer the deleted object
    assert isinstance(deleted, V1Service)
    assert deleted.metadata.name == "worker"
    assert server.get("v1", "services", NS, "worker") is None
    with pytest.raises(ApiException) as excinfo:
        core.read_namespaced_service("worker", NS)
    assert excinfo.value.status == 404
