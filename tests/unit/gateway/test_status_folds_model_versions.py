"""github-sync's model-version reports folded into ``model_versions`` (entity id
``<name>/<version>``): a Succeeded sync's facts, a later Failed one keeping them, the order by
seq, and a malformed id dead-lettered."""

from __future__ import annotations

import pytest

from llmops_gateway.db.models import ModelVersion
from llmops_gateway.db.session import SessionFactory
from llmops_shared.events import Phase, StatusEntity, StatusUpdated
from llmops_shared.streams import NonRetryableError

from unit.gateway.folds import SEQ, count, fold, report, stored

pytestmark = pytest.mark.unit

SYNCED = {
    "path": "values/5d2c.yaml",
    "action": "created",
    "commit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "backend": "github",
    "pull_request": None,
    "max_model_len": 4096,
    "capped": True,
}


def _version(
    phase: Phase, seq: int, *, reason: str | None = None, **details: object
) -> StatusUpdated:
    return report(StatusEntity.MODEL_VERSION, "llama-sft/3", phase, seq, reason=reason, **details)


def test_a_succeeded_sync_is_kept_with_its_file_and_commit(sessions: SessionFactory) -> None:
    assert fold(sessions, _version(Phase.SUCCEEDED, SEQ, **SYNCED))
    row = stored(sessions, ModelVersion, "llama-sft/3")
    assert (row.name, row.version, row.status, row.seq) == ("llama-sft", "3", "Succeeded", SEQ)
    assert (row.path, row.commit, row.backend, row.action) == (
        "values/5d2c.yaml",
        SYNCED["commit"],
        "github",
        "created",
    )
    assert (row.max_model_len, row.capped, row.pull_request) == (4096, True, None)


def test_a_failed_retry_keeps_the_last_good_sync_and_stale_reports_change_nothing(
    sessions: SessionFactory,
) -> None:
    fold(sessions, _version(Phase.SUCCEEDED, SEQ + 1, **SYNCED))
    failed = _version(Phase.FAILED, SEQ + 2, reason="GitHub 502")
    assert fold(sessions, failed)
    row = stored(sessions, ModelVersion, "llama-sft/3")
    assert (row.status, row.reason, row.commit, row.path) == (
        "Failed",
        "GitHub 502",
        SYNCED["commit"],
        "values/5d2c.yaml",
    )
    stale = _version(Phase.SUCCEEDED, SEQ, **{**SYNCED, "commit": "0" * 40})
    assert not fold(sessions, stale)
    assert stored(sessions, ModelVersion, "llama-sft/3").commit == SYNCED["commit"]


def test_a_skipped_version_has_no_file(sessions: SessionFactory) -> None:
    fold(sessions, _version(Phase.SUCCEEDED, SEQ, **SYNCED))
    skipped = {**dict.fromkeys(SYNCED), "action": "skipped", "backend": "git", "capped": False}
    fold(sessions, _version(Phase.SUCCEEDED, SEQ + 1, reason="no run", **skipped))
    row = stored(sessions, ModelVersion, "llama-sft/3")
    assert (row.action, row.path, row.commit, row.reason) == ("skipped", None, None, "no run")


def test_an_entity_id_without_a_version_is_dead_lettered(sessions: SessionFactory) -> None:
    bad = report(StatusEntity.MODEL_VERSION, "no-slash", Phase.SUCCEEDED, SEQ, **SYNCED)
    with pytest.raises(NonRetryableError, match="is not <name>/<version>"):
        fold(sessions, bad)
    assert count(sessions, ModelVersion) == 0
