"""Folding the serving worker's deployment reports, and the two-phase delete (both databases).

The endpoint row (which holds its name and route) must outlive the cluster resource: DELETE
marks it Deleting; only a ``Deleted`` report removes it, and a ``Failed`` one keeps it, marked.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from llmops_shared.events import (
    DeadLetterEntry,
    DeploymentDeleted,
    DeploymentStatusUpdated,
    Phase,
    StatusEntity,
    new_seq,
    status_updated,
)

from integration.gateway.harness import API, Gateway, auth, serving_request
from support.streams import wait_until

pytestmark = pytest.mark.integration

ENDPOINTS = f"{API}/serving/endpoints"
MANIFEST: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "test-model", "namespace": "llm-ops-dev"},
    "spec": {"predictor": {"canaryTrafficPercent": 10}},
}


def report(
    endpoint_id: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> DeploymentStatusUpdated:
    """What the serving worker publishes about an endpoint; ``details`` replace the defaults
    (pass ``key=None`` to drop one)."""
    body: dict[str, Any] = {
        "name": "test-model",
        "namespace": "llm-ops-dev",
        "backend": "kserve",
        "deployment_mode": "Serverless",
        "manifest": MANIFEST,
        "url": "http://test-model.llm-ops-dev.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        "traffic": [
            {"revision": "test-model-predictor-00001", "percent": 90, "latest": False},
            {
                "revision": "test-model-predictor-00002",
                "percent": 10,
                "latest": True,
                "tag": "latest",
            },
        ],
        "rollout": {"strategy": "canary", "canary_percent": 10},
    }
    body.update(details)
    payload = status_updated(
        StatusEntity.DEPLOYMENT,
        entity_id=endpoint_id,
        phase=phase,
        reporter="serving",
        reason=reason,
        details={k: v for k, v in body.items() if v is not None},
        seq=seq,
    )
    assert isinstance(payload, DeploymentStatusUpdated)
    return payload


async def created_endpoint(gateway: Gateway, **changes: Any) -> dict[str, Any]:
    model = await gateway.register_trained_model()
    response = await gateway.create_endpoint(serving_request(model["id"], **changes))
    assert response.status_code == 202, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def test_no_deployment_before_the_first_report(gateway: Gateway) -> None:
    endpoint = await created_endpoint(gateway)
    response = await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}/deployment")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"no deployment reported yet for endpoint {endpoint['id']}"
    }


async def test_ready_report_shows_up_and_a_stale_one_is_ignored(gateway: Gateway) -> None:
    endpoint = await created_endpoint(gateway)
    seq = new_seq()
    await gateway.publish_status(report(endpoint["id"], Phase.READY, seq))
    await gateway.publish_status(
        report(endpoint["id"], Phase.FAILED, seq - 1_000, reason="older", url=None)
    )
    await gateway.wait_processed(2)

    response = await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}/deployment")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view == {
        "endpointId": endpoint["id"],
        "name": "test-model",
        "namespace": "llm-ops-dev",
        "backend": "kserve",
        "deploymentMode": "Serverless",
        "manifest": MANIFEST,
        "status": "Ready",
        "reason": None,
        "url": "http://test-model.llm-ops-dev.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        "traffic": [
            {"revision": "test-model-predictor-00001", "percent": 90, "latest": False, "tag": None},
            {
                "revision": "test-model-predictor-00002",
                "percent": 10,
                "latest": True,
                "tag": "latest",
            },
        ],
        "rollout": {"strategy": "canary", "canaryPercent": 10},
        "observedAt": view["observedAt"],
    }
    observed = datetime.fromisoformat(view["observedAt"].replace("Z", "+00:00"))
    assert observed == datetime.fromtimestamp(seq / 1e9, UTC).replace(
        microsecond=observed.microsecond
    )
    read = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json()
    assert read["status"] == "Ready"
    assert read["url"] == "http://test-model.llm-ops-dev.example.com"


async def test_later_reports_keep_what_they_do_not_mention(gateway: Gateway) -> None:
    endpoint = await created_endpoint(gateway)
    seq = new_seq()
    await gateway.publish_status(report(endpoint["id"], Phase.READY, seq))
    failed = report(
        endpoint["id"],
        Phase.FAILED,
        seq + 1_000,
        reason="predictor CrashLoopBackOff",
        manifest=None,
        url=None,
        traffic=None,
        conditions=[{"type": "Ready", "status": "False", "reason": "CrashLoopBackOff"}],
        rollout={"strategy": None, "canary_percent": None},  # the worker's "unknown"
    )
    await gateway.publish_status(failed)
    await gateway.wait_processed(2)

    view = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}/deployment")).json()
    assert view["status"] == "Failed"
    assert view["reason"] == "predictor CrashLoopBackOff"
    assert view["conditions"][0]["status"] == "False"
    assert view["manifest"] == MANIFEST  # missing keys keep the stored value
    assert view["url"] == "http://test-model.llm-ops-dev.example.com"
    assert len(view["traffic"]) == 2
    assert view["rollout"] == {"strategy": "canary", "canaryPercent": 10}
    read = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json()
    assert (read["status"], read["reason"]) == ("Failed", "predictor CrashLoopBackOff")
    # What the worker sends right after an apply, before observing: empty lists keep the view.
    applied = report(endpoint["id"], Phase.PENDING, seq + 2_000, conditions=[], traffic=[])
    await gateway.publish_status(applied)
    await gateway.wait_processed(3)
    view = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}/deployment")).json()
    assert view["status"] == "Pending"
    assert view["conditions"][0]["reason"] == "CrashLoopBackOff"
    assert len(view["traffic"]) == 2
    read = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json()
    assert read["status"] == "Pending"
    # After a promote the worker reports the canary gone: the percent must not linger.
    promoted = report(
        endpoint["id"],
        Phase.READY,
        seq + 3_000,
        rollout={"strategy": "canary", "canary_percent": None},
    )
    await gateway.publish_status(promoted)
    await gateway.wait_processed(4)
    view = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}/deployment")).json()
    assert view["rollout"]["canaryPercent"] is None


async def test_delete_waits_for_the_deleted_report_then_frees_the_route(
    gateway: Gateway,
) -> None:
    endpoint = await created_endpoint(gateway)
    url = f"{ENDPOINTS}/{endpoint['id']}"
    seq = new_seq()
    await gateway.publish_status(report(endpoint["id"], Phase.READY, seq))
    await gateway.wait_processed(1)

    deleting = await gateway.client.delete(
        url, headers={**auth(), "X-Correlation-ID": "corr-delete"}
    )
    assert deleting.status_code == 202, deleting.text
    assert deleting.json()["status"] == "Deleting"
    assert deleting.json()["deleteRequestedAt"] is not None
    # Deleting: still listed, the route still taken, mutations refused.
    assert (await gateway.client.get(url)).json()["status"] == "Deleting"
    assert len((await gateway.client.get(ENDPOINTS)).json()["items"]) == 1
    model_id = endpoint["modelId"]
    taken = await gateway.create_endpoint(serving_request(model_id))
    assert taken.status_code == 409
    for action in ("promote", "rollback"):
        refused = await gateway.client.post(f"{url}/{action}", headers=auth())
        assert refused.status_code == 409, action
        assert "it is being deleted (Deleting)" in refused.json()["detail"]
    # A report of the still-running resource does not undo the deletion.
    await gateway.publish_status(report(endpoint["id"], Phase.READY, seq + 1_000))
    await gateway.wait_processed(2)
    assert (await gateway.client.get(url)).json()["status"] == "Deleting"

    _, deleted_event = await gateway.wait_for_serving_events(2)
    assert deleted_event.type == "llmops.serving.deployment.deleted.v1"
    assert deleted_event.envelope.correlationid == "corr-delete"
    deleted = deleted_event.payload_as(DeploymentDeleted)
    assert (deleted.endpoint_id, deleted.name, deleted.environment) == (
        endpoint["id"],
        "test-model",
        "dev",
    )

    await gateway.publish_status(report(endpoint["id"], Phase.DELETED, seq + 2_000))
    await gateway.wait_processed(3)
    assert (await gateway.client.get(url)).status_code == 404
    assert (await gateway.client.get(ENDPOINTS)).json()["items"] == []
    assert gateway.count("serving_deployments") == 0
    # A late report about the removed endpoint changes no row (it only asks the worker to
    # delete the object again, which spares a new owner's), and the route is free again.
    await gateway.publish_status(report(endpoint["id"], Phase.READY, seq + 3_000))
    await gateway.wait_processed(4)
    assert gateway.count("serving_deployments") == 0
    again = await gateway.create_endpoint(serving_request(model_id))
    assert again.status_code == 202, again.text
    assert again.json()["name"] == "test-model"


async def test_a_failed_deletion_keeps_the_endpoint_marked_and_can_be_retried(
    gateway: Gateway,
) -> None:
    endpoint = await created_endpoint(gateway)
    url = f"{ENDPOINTS}/{endpoint['id']}"
    assert (await gateway.client.delete(url, headers=auth())).status_code == 202
    seq = new_seq()
    await gateway.publish_status(
        report(endpoint["id"], Phase.FAILED, seq, reason="forbidden: cannot delete isvc")
    )
    await gateway.wait_processed(1)

    failed = (await gateway.client.get(url)).json()
    assert failed["status"] == "DeleteFailed"
    assert failed["reason"] == "forbidden: cannot delete isvc"
    assert (await gateway.client.post(f"{url}/promote", headers=auth())).status_code == 409

    retry = await gateway.client.delete(url, headers=auth())
    assert retry.status_code == 202
    assert (retry.json()["status"], retry.json()["reason"]) == ("Deleting", None)
    repeat = await gateway.client.delete(url, headers=auth())  # idempotent while Deleting
    assert repeat.status_code == 202
    assert repeat.json()["status"] == "Deleting"
    events = await gateway.wait_for_serving_events(4)
    assert [e.type.rsplit(".", 2)[1] for e in events] == [
        "requested", "deleted", "deleted", "deleted",
    ]  # fmt: skip

    await gateway.publish_status(report(endpoint["id"], Phase.DELETED, seq + 1_000))
    await gateway.wait_processed(2)
    assert (await gateway.client.get(url)).status_code == 404
    assert (await gateway.client.delete(url, headers=auth())).status_code == 404


async def test_a_deleted_report_without_a_delete_request_keeps_the_record(
    gateway: Gateway,
) -> None:
    endpoint = await created_endpoint(gateway)
    await gateway.publish_status(
        report(endpoint["id"], Phase.DELETED, new_seq(), reason="InferenceService not found")
    )
    await gateway.wait_processed(1)
    read = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json()
    assert (read["status"], read["reason"]) == ("Deleted", "InferenceService not found")


async def test_a_malformed_report_goes_to_the_dead_letter_stream(gateway: Gateway) -> None:
    endpoint = await created_endpoint(gateway)
    valid = report(endpoint["id"], Phase.READY, new_seq())
    envelope = await gateway.publish_unchecked_status(valid, traffic=[{"percent": "most"}])
    dlq = f"{gateway.namespace}llmops.status.dlq"

    async def dead_lettered() -> bool:
        return bool(await gateway.redis.xlen(dlq))

    await wait_until(dead_lettered, timeout_s=10)
    entries = await gateway.redis.xrange(dlq)
    assert entries is not None
    [(_, fields)] = entries
    entry = DeadLetterEntry.from_fields(cast("dict[bytes, bytes]", fields))
    assert envelope.id in entry.event
    assert (entry.error_type, entry.cause) == ("EventDecodeError", "non_retryable")
    assert entry.reason == (
        "invalid payload for llmops.status.deployment.updated.v1: "
        "data.details.traffic.0.percent: Input should be a valid integer, unable to parse string "
        "as an integer"
    )
    read = (await gateway.client.get(f"{ENDPOINTS}/{endpoint['id']}")).json()
    assert read["status"] == "Pending"


async def test_an_unknown_endpoint_reported_ready_is_answered_with_one_delete(
    gateway: Gateway,
) -> None:
    """A Ready report of an endpoint the gateway does not hold (deleted and removed, or never
    known): the object runs tracked by nobody, so the gateway asks the serving worker to delete
    it, through the outbox, once per report: a redelivered report asks nothing more."""
    stray = str(uuid.uuid4())
    ready = report(stray, Phase.READY, new_seq(), name="stray-model")
    event_id = str(uuid.uuid4())
    await gateway.publish_status(ready, event_id=event_id)
    [answer] = await gateway.wait_for_serving_events(1)
    assert answer.type == "llmops.serving.deployment.deleted.v1"
    assert answer.payload_as(DeploymentDeleted) == DeploymentDeleted(
        endpoint_id=stray, name="stray-model", environment="dev"
    )

    await gateway.publish_status(ready, event_id=event_id)  # redelivered
    await gateway.publish_status(report(stray, Phase.DELETED, new_seq(), manifest=None))
    await gateway.wait_processed(2)  # the redelivery is skipped without a ledger row
    await asyncio.sleep(3 * gateway.settings.relay_poll_interval_s)  # what the relay would send
    assert len(await gateway.serving_events()) == 1
    assert gateway.count("serving_deployments") == 0
