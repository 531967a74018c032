"""Folding the serving worker's deployment reports into endpoints (entity id = endpoint id),
and the two-phase delete: only a ``Deleted`` report removes a row whose delete was asked."""

from __future__ import annotations

from typing import Any, Final

import pytest

from llmops_gateway.db.models import ServingDeployment
from llmops_gateway.db.session import SessionFactory
from llmops_gateway.domain.serving import DELETE_FAILED, DELETING
from llmops_shared.events import Phase, StatusEntity, StatusUpdated

from unit.gateway.folds import SEQ, fold, observed, report, row, seed_endpoint, stored

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


def test_a_report_about_an_unknown_endpoint_changes_nothing(sessions: SessionFactory) -> None:
    assert not fold(sessions, deployment_report("no-such-endpoint", Phase.READY, SEQ))
    assert row(sessions, ServingDeployment, "no-such-endpoint") is None


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
