"""Folding the serving worker's deployment reports into endpoints (entity id = endpoint id),
and the two-phase delete: only a ``Deleted`` report removes a row whose delete was asked."""

from __future__ import annotations

from typing import Any, Final

import pytest
from sqlalchemy import select

from llmops_gateway.db.models import OUTBOX, ServingDeployment
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.serving import DELETE_FAILED, DELETING
from llmops_shared.events import (
    DeploymentDeleted,
    Event,
    Phase,
    StatusEntity,
    StatusUpdated,
    decode_event,
)

from unit.gateway.folds import (
    SEQ,
    fold,
    new_id,
    observed,
    report,
    row,
    seed_endpoint,
    stored,
)

pytestmark = pytest.mark.unit

INFERENCE_SERVICE: Final[dict[str, Any]] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "test-model", "namespace": "llm-ops-dev"},
    "spec": {"predictor": {"canaryTrafficPercent": 10}},
}
BUILTIN_LIST: Final[dict[str, Any]] = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [{"kind": "Deployment", "metadata": {"name": "test-model"}}],
}
URL: Final = "http://test-model.llm-ops-dev.example.com"
TRAFFIC: Final[list[dict[str, Any]]] = [
    {"revision": "test-model-predictor-00001", "percent": 90, "latest": False},
    {"revision": "test-model-predictor-00002", "percent": 10, "latest": True, "tag": "latest"},
]
READY_CONDITION: Final = {"type": "Ready", "status": "True"}


def deployment_report(
    endpoint_id: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> StatusUpdated:
    """What the KServe worker reports about an endpoint; ``details`` replace the defaults
    (``key=None`` drops one)."""
    body: dict[str, Any] = {
        "name": "test-model",
        "namespace": "llm-ops-dev",
        "backend": "kserve",
        "deployment_mode": "Serverless",
        "manifest": INFERENCE_SERVICE,
        "url": URL,
        "conditions": [READY_CONDITION],
        "traffic": TRAFFIC,
        "rollout": {"strategy": "canary", "canary_percent": 10},
        **details,
    }
    facts = {key: value for key, value in body.items() if value is not None}
    return report(StatusEntity.DEPLOYMENT, endpoint_id, phase, seq, reason=reason, **facts)


def short_report(endpoint_id: str, phase: Phase, seq: int, **details: Any) -> StatusUpdated:
    """A report with only the facts given."""
    return report(StatusEntity.DEPLOYMENT, endpoint_id, phase, seq, **details)


def endpoint(sessions: SessionFactory, endpoint_id: str) -> ServingDeployment:
    return stored(sessions, ServingDeployment, endpoint_id)


def test_a_report_sets_the_status_and_the_deployment_view(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    assert fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.reported_phase, stored_endpoint.seq) == (
        "Ready",
        "Ready",
        SEQ,
    )
    assert (
        stored_endpoint.namespace,
        stored_endpoint.backend,
        stored_endpoint.deployment_mode,
        stored_endpoint.serve_url,
    ) == ("llm-ops-dev", "kserve", "Serverless", URL)
    assert (stored_endpoint.manifest, stored_endpoint.conditions) == (
        INFERENCE_SERVICE,
        [READY_CONDITION],
    )
    assert stored_endpoint.observed_at == observed(SEQ)


def test_the_traffic_split_is_folded_entry_by_entry(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    assert endpoint(sessions, endpoint_id).traffic == TRAFFIC


def test_the_reason_follows_the_phase(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.DEGRADED, SEQ, reason="1/2 replicas"))
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ + 1))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.reason) == ("Ready", None)


def test_a_stale_deployment_report_is_ignored(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ + 2))
    assert not fold(sessions, deployment_report(endpoint_id, Phase.FAILED, SEQ + 1, url="x://y"))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.serve_url, stored_endpoint.seq) == (
        "Ready",
        URL,
        SEQ + 2,
    )


def queued(sessions: SessionFactory) -> list[Event]:
    """The events the folds queued in the outbox, oldest first."""
    with sessions() as session:
        payloads = session.scalars(select(OUTBOX.c.payload).order_by(OUTBOX.c.position)).all()
    return [decode_event(payload) for payload in payloads]


def test_a_report_about_an_unknown_endpoint_changes_no_row(sessions: SessionFactory) -> None:
    assert not fold(sessions, deployment_report("no-such-endpoint", Phase.READY, SEQ))
    assert row(sessions, ServingDeployment, "no-such-endpoint") is None


@pytest.mark.parametrize("phase", [Phase.READY, Phase.PENDING, Phase.FAILED])
def test_an_unknown_endpoint_reported_existing_is_answered_with_its_delete(
    sessions: SessionFactory, phase: Phase
) -> None:
    """A stray object (e.g. recreated by a replayed request after its endpoint was deleted and
    removed) would run on, tracked by nobody: the fold queues its delete in its transaction."""
    stray = new_id()
    fold(sessions, deployment_report(stray, phase, SEQ, name="stray-model"))
    [answer] = queued(sessions)
    assert answer.type == "llmops.serving.deployment.deleted.v1"
    assert answer.payload_as(DeploymentDeleted) == DeploymentDeleted(
        endpoint_id=stray, name="stray-model", environment="dev"
    )
    assert answer.envelope.source == "gateway"
    assert row(sessions, ServingDeployment, stray) is None


def test_a_redelivered_report_of_an_unknown_endpoint_queues_no_second_delete(
    sessions: SessionFactory,
) -> None:
    stray = new_id()
    ready = deployment_report(stray, Phase.READY, SEQ)
    event_id = new_id()
    fold(sessions, ready, event_id=event_id)
    fold(sessions, ready, event_id=event_id)  # the same report, delivered again
    assert [e.type for e in queued(sessions)] == ["llmops.serving.deployment.deleted.v1"]


def test_the_environment_of_the_delete_is_the_reported_namespace(
    sessions: SessionFactory,
) -> None:
    stray = new_id()
    fold(sessions, deployment_report(stray, Phase.READY, SEQ, namespace="llm-ops-prod"))
    [answer] = queued(sessions)
    assert answer.payload_as(DeploymentDeleted).environment == "prod"


@pytest.mark.parametrize(
    ("phase", "facts"),
    [
        (Phase.DELETED, {"manifest": None}),  # gone: nothing to remove
        (Phase.DELETED, {}),  # gone, whatever the report still describes
        # the worker's answer to a delete while finalizers run (no manifest): answering it
        # with another delete would loop until the object is gone
        (Phase.PENDING, {"manifest": None}),
        (Phase.FAILED, {"manifest": None}),  # a refused request: nothing was created
        (Phase.READY, {"namespace": "default"}),  # not an environment's namespace
        (Phase.READY, {"namespace": None}),
        (Phase.READY, {"name": None}),
        (Phase.READY, {"name": "Not_A_Name"}),  # not a name the platform gives
    ],
)
def test_an_unknown_endpoint_not_shown_existing_is_not_answered(
    sessions: SessionFactory, phase: Phase, facts: dict[str, Any]
) -> None:
    assert not fold(sessions, deployment_report(new_id(), phase, SEQ, **facts))
    assert queued(sessions) == []


def test_an_object_under_an_id_the_platform_does_not_mint_is_not_answered(
    sessions: SessionFactory,
) -> None:
    assert not fold(sessions, deployment_report("Not An Id", Phase.READY, SEQ))
    assert queued(sessions) == []


def test_a_known_endpoint_is_never_answered_with_a_delete(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ - 1))  # stale: still known
    assert queued(sessions) == []


def test_a_report_after_the_row_was_removed_is_answered_with_a_delete(
    sessions: SessionFactory,
) -> None:
    """The issue's sequence on the gateway's side: deleted to the end (the row is gone), then
    the object reappears (a replayed request on a worker without the endpoint's tombstone)."""
    endpoint_id = seed_endpoint(sessions, status=DELETING)
    fold(sessions, deployment_report(endpoint_id, Phase.DELETED, SEQ))
    assert row(sessions, ServingDeployment, endpoint_id) is None
    fold(sessions, deployment_report(endpoint_id, Phase.PENDING, SEQ + 1))
    [answer] = queued(sessions)
    assert answer.payload_as(DeploymentDeleted).endpoint_id == endpoint_id


def test_missing_or_empty_facts_keep_the_stored_ones(sessions: SessionFactory) -> None:
    """Applied but not observed yet: empty conditions and traffic must not blank the view."""
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    fold(sessions, short_report(endpoint_id, Phase.PENDING, SEQ + 1, conditions=[], traffic=[]))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert stored_endpoint.status == "Pending"
    assert (stored_endpoint.conditions, stored_endpoint.traffic) == ([READY_CONDITION], TRAFFIC)
    assert (
        stored_endpoint.serve_url,
        stored_endpoint.deployment_mode,
        stored_endpoint.namespace,
        stored_endpoint.manifest,
    ) == (URL, "Serverless", "llm-ops-dev", INFERENCE_SERVICE)


def test_newer_facts_replace_the_stored_ones(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    degraded = {"type": "Ready", "status": "False", "reason": "RevisionMissing"}
    fold(
        sessions,
        short_report(endpoint_id, Phase.DEGRADED, SEQ + 1, url="http://new", conditions=[degraded]),
    )
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.serve_url, stored_endpoint.conditions) == ("http://new", [degraded])


def test_deleted_while_deleting_removes_the_row(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions, status=DELETING)
    assert fold(sessions, short_report(endpoint_id, Phase.DELETED, SEQ, backend="kserve"))
    assert row(sessions, ServingDeployment, endpoint_id) is None


def test_deleted_after_a_failed_delete_removes_the_row(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions, status=DELETE_FAILED)
    assert fold(sessions, short_report(endpoint_id, Phase.DELETED, SEQ, backend="kserve"))
    assert row(sessions, ServingDeployment, endpoint_id) is None


def test_deleted_without_a_delete_request_only_marks_the_endpoint(
    sessions: SessionFactory,
) -> None:
    """Someone removed the resource behind the platform's back: the row stays, Deleted."""
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    assert fold(sessions, short_report(endpoint_id, Phase.DELETED, SEQ + 1, backend="kserve"))
    assert endpoint(sessions, endpoint_id).status == "Deleted"


def test_failed_while_deleting_is_a_failed_delete(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions, status=DELETING)
    fold(sessions, deployment_report(endpoint_id, Phase.FAILED, SEQ, reason="forbidden"))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.reason) == (DELETE_FAILED, "forbidden")


def test_a_failed_delete_without_a_reason_says_what_failed(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions, status=DELETING)
    fold(sessions, short_report(endpoint_id, Phase.FAILED, SEQ))
    assert endpoint(sessions, endpoint_id).reason == (
        "the serving worker could not delete the deployment"
    )


def test_another_phase_while_deleting_updates_the_view_and_keeps_deleting(
    sessions: SessionFactory,
) -> None:
    endpoint_id = seed_endpoint(sessions, status=DELETING, reason="deleted by alice")
    assert fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.reason) == (DELETING, "deleted by alice")
    assert (stored_endpoint.reported_phase, stored_endpoint.serve_url) == ("Ready", URL)


def test_deleted_reported_by_the_former_format_is_ignored(sessions: SessionFactory) -> None:
    """After a move to KServe, a replica watching the built-in Deployment saw it go: the
    endpoint (now an InferenceService) is not gone."""
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    assert not fold(
        sessions, short_report(endpoint_id, Phase.DELETED, SEQ + 1, backend="deployment")
    )
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (stored_endpoint.status, stored_endpoint.seq) == ("Ready", SEQ)


def test_a_change_of_format_clears_what_the_old_object_reported(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    to_builtin = short_report(
        endpoint_id, Phase.PENDING, SEQ + 1, backend="deployment", manifest=BUILTIN_LIST
    )
    assert fold(sessions, to_builtin)
    stored_endpoint = endpoint(sessions, endpoint_id)
    assert (
        stored_endpoint.deployment_mode,
        stored_endpoint.serve_url,
        stored_endpoint.conditions,
        stored_endpoint.traffic,
    ) == (None, None, None, None)
    assert (stored_endpoint.backend, stored_endpoint.manifest) == ("deployment", BUILTIN_LIST)


def test_a_rollout_that_names_its_strategy_replaces_the_stored_one(
    sessions: SessionFactory,
) -> None:
    """A promoted canary has no percent left."""
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    fold(sessions, short_report(endpoint_id, Phase.READY, SEQ + 1, rollout={"strategy": "rolling"}))
    assert endpoint(sessions, endpoint_id).rollout == {"strategy": "rolling"}


def test_a_partial_rollout_is_merged_into_the_stored_one(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ))
    fold(sessions, short_report(endpoint_id, Phase.READY, SEQ + 1, rollout={"canary_percent": 50}))
    assert endpoint(sessions, endpoint_id).rollout == {"strategy": "canary", "canary_percent": 50}


def test_a_move_between_formats_is_kept_as_a_migration_condition(
    sessions: SessionFactory,
) -> None:
    endpoint_id = seed_endpoint(sessions)
    refused = {"outcome": "failed", "from": "kserve", "target": "builtin", "reason": "no quota"}
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ, migration=refused))
    assert endpoint(sessions, endpoint_id).conditions == [
        READY_CONDITION,
        {
            "type": "Migration",
            "status": "False",
            "reason": "failed",
            "message": "no quota",
            "target": "builtin",
        },
    ]


def test_an_empty_move_object_adds_no_migration_condition(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ, migration={}))
    conditions = endpoint(sessions, endpoint_id).conditions or []
    assert [c["type"] for c in conditions] == ["Ready"]


def test_a_later_move_report_replaces_the_migration_condition(sessions: SessionFactory) -> None:
    endpoint_id = seed_endpoint(sessions)
    moving = {"outcome": "in_progress", "from": "kserve", "target": "builtin"}
    done = {"outcome": "migrated", "from": "kserve", "target": "builtin"}
    fold(sessions, deployment_report(endpoint_id, Phase.READY, SEQ, migration=moving))
    fold(sessions, short_report(endpoint_id, Phase.READY, SEQ + 1, migration=done))
    migration = [
        c for c in endpoint(sessions, endpoint_id).conditions or [] if c["type"] == "Migration"
    ]
    assert [(c["status"], c["reason"]) for c in migration] == [("True", "migrated")]
