"""Folding the registry worker's model reports into the catalog, and the versioning worker's
reports into dataset versions and restores."""

from __future__ import annotations

from typing import Any, Final

import pytest

from llmops_gateway.db.models import CatalogModel, DatasetRestore, DatasetVersion
from llmops_gateway.db.session import SessionFactory
from llmops_shared.events import Phase, StatusEntity, StatusUpdated

from unit.gateway.folds import (
    SEQ,
    fold,
    link_of,
    observed,
    report,
    seed_model,
    seed_restore,
    seed_version,
    stored,
)

pytestmark = pytest.mark.unit

COMMIT: Final = "0123456789abcdef0123456789abcdef01234567"
HUB_URL: Final = f"https://huggingface.co/meta-llama/Llama-3-8B/tree/{COMMIT}"
SNAPSHOT: Final = "s3://models/meta-llama/Llama-3-8B/" + COMMIT
FILES: Final = [["data/a.jsonl", "0cc175b9c0f1b6a831c399e269772661", 10]]


def model_report(model_id: str, phase: Phase, seq: int, **details: Any) -> StatusUpdated:
    return report(StatusEntity.MODEL, model_id, phase, seq, **details)


def imported(**changes: Any) -> dict[str, Any]:
    """``details.model`` of an import's Succeeded report."""
    return {
        "registry_type": "huggingface",
        "repo_id": "meta-llama/Llama-3-8B",
        "revision": COMMIT,
        "url": HUB_URL,
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "family": "llama",
        "max_position_embeddings": 8192,
        "license": "llama3",
        "safetensors": True,
        "files": [{"path": "model.safetensors", "size": 16}],
        "total_bytes": 16,
        "snapshot_uri": SNAPSHOT,
        **changes,
    }


def downloading(files_done: int) -> dict[str, Any]:
    return {
        "stage": "downloading",
        "files_done": files_done,
        "files_total": 4,
        "bytes_done": files_done * 100,
        "bytes_total": 400,
    }


def upstream(**changes: Any) -> dict[str, Any]:
    """``details.upstream``: the answer to a check-updates request."""
    return {
        "pinned_revision": COMMIT,
        "upstream_revision": "f" * 40,
        "updated": True,
        "checked_at": "2026-01-02T03:04:05Z",
        **changes,
    }


def catalog_model(sessions: SessionFactory, model_id: str) -> CatalogModel:
    return stored(sessions, CatalogModel, model_id)


def version_facts(**changes: Any) -> dict[str, Any]:
    """``details.version`` of a version's Succeeded report."""
    return {
        "backend": "dvc",
        "digest": "d41d8cd98f00b204e9800998ecf8427e.dir",
        "file_count": 1,
        "total_bytes": 10,
        "revision": "abc123",
        "tag": "ds-v1",
        "remote_uri": "s3://dvc-remote/ds",
        "files": FILES,
        **changes,
    }


def version_report(
    version_id: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> StatusUpdated:
    return report(StatusEntity.DATASET_VERSION, version_id, phase, seq, reason=reason, **details)


def restore_report(
    restore_id: str, phase: Phase, seq: int, *, reason: str | None = None, **details: Any
) -> StatusUpdated:
    return report(StatusEntity.DATASET_RESTORE, restore_id, phase, seq, reason=reason, **details)


def restore_facts(done: int, total: int) -> dict[str, Any]:
    return {
        "version_id": "v",
        "target_uri": "s3://restore/here",
        "files_done": done,
        "files_total": total,
        "bytes_done": done * 10,
        "bytes_total": total * 10,
    }


# ---------------------------------------------------------------------- catalog models


def test_a_running_import_reports_its_progress(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    assert fold(sessions, model_report(model_id, Phase.RUNNING, SEQ, progress=downloading(1)))
    model = catalog_model(sessions, model_id)
    assert (model.status, model.progress) == ("Running", downloading(1))


def test_a_succeeded_import_makes_the_model_ready_and_verified(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    assert fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    model = catalog_model(sessions, model_id)
    assert (model.status, model.verified, model.seq) == ("Ready", True, SEQ)
    assert (model.family, model.max_position_embeddings, model.hf_architecture) == (
        "llama",
        8192,
        "LlamaForCausalLM",
    )


def test_the_imported_facts_are_kept_without_those_with_their_own_columns(
    sessions: SessionFactory,
) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    facts = catalog_model(sessions, model_id).facts or {}
    assert (facts["license"], facts["safetensors"], facts["files"]) == (
        "llama3",
        True,
        [{"path": "model.safetensors", "size": 16}],
    )
    assert not {"repo_id", "revision", "url", "family", "max_position_embeddings"} & set(facts)


def test_a_downloaded_snapshot_becomes_the_models_location(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    assert catalog_model(sessions, model_id).storage_uri == SNAPSHOT


def test_a_snapshot_that_is_not_a_uri_is_no_location(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions, storage_uri="s3://typed/in")
    bad = imported(snapshot_uri="not a uri")
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=bad))
    assert catalog_model(sessions, model_id).storage_uri == "s3://typed/in"


def test_a_succeeded_import_clears_the_progress(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.RUNNING, SEQ, progress=downloading(3)))
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 1, model=imported()))
    assert catalog_model(sessions, model_id).progress is None


def test_a_succeeded_import_pins_the_link_to_the_commit(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    link = link_of(sessions, model_id)
    assert (link.status, link.resolved_revision, link.url, link.seq) == (
        "Ready",
        COMMIT,
        HUB_URL,
        SEQ,
    )
    assert link.last_synced_at == observed(SEQ)


def test_a_failed_import_fails_the_model_and_its_link(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.RUNNING, SEQ, progress=downloading(1)))
    fold(sessions, report(StatusEntity.MODEL, model_id, Phase.FAILED, SEQ + 1, reason="gated"))
    model, link = catalog_model(sessions, model_id), link_of(sessions, model_id)
    assert (model.status, model.reason, link.status, link.reason) == (
        "Failed",
        "gated",
        "Failed",
        "gated",
    )


def test_a_failed_import_keeps_no_half_imported_facts(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions, family="llama", max_position_embeddings=8192)
    fold(sessions, report(StatusEntity.MODEL, model_id, Phase.FAILED, SEQ, reason="gated"))
    model = catalog_model(sessions, model_id)
    assert (model.family, model.max_position_embeddings, model.verified) == (None, None, False)


def test_a_stale_model_report_is_ignored(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 2, model=imported()))
    assert not fold(
        sessions, model_report(model_id, Phase.RUNNING, SEQ + 1, progress=downloading(1))
    )
    model = catalog_model(sessions, model_id)
    assert (model.status, model.progress, model.seq) == ("Ready", None, SEQ + 2)


def test_a_report_about_an_unknown_model_changes_nothing(sessions: SessionFactory) -> None:
    assert not fold(sessions, model_report("no-such-model", Phase.SUCCEEDED, SEQ, model=imported()))


def test_an_update_check_fills_the_links_check_fields(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    assert fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 1, upstream=upstream()))
    link = link_of(sessions, model_id)
    assert (link.upstream_revision, link.update_available, link.check_error, link.check_seq) == (
        "f" * 40,
        True,
        None,
        SEQ + 1,
    )
    assert link.upstream_checked_at is not None
    assert link.upstream_checked_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_an_update_check_does_not_touch_the_models_status(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, model=imported()))
    fold(sessions, model_report(model_id, Phase.FAILED, SEQ + 1, upstream=upstream()))
    model, link = catalog_model(sessions, model_id), link_of(sessions, model_id)
    assert (model.status, model.seq, link.status, link.seq) == ("Ready", SEQ, "Ready", SEQ)


def test_an_older_update_check_is_ignored(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 2, upstream=upstream()))
    older = upstream(upstream_revision=COMMIT, updated=False)
    assert not fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 1, upstream=older))
    link = link_of(sessions, model_id)
    assert (link.upstream_revision, link.update_available) == ("f" * 40, True)


def test_a_failed_update_check_keeps_the_last_answer(sessions: SessionFactory) -> None:
    model_id = seed_model(sessions)
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, upstream=upstream()))
    failed = upstream(upstream_revision=None, updated=False, error="Hub answered 429")
    fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ + 1, upstream=failed))
    link = link_of(sessions, model_id)
    assert (link.upstream_revision, link.update_available, link.check_error) == (
        "f" * 40,
        True,
        "Hub answered 429",
    )


def test_an_update_check_of_a_model_without_a_link_changes_nothing(
    sessions: SessionFactory,
) -> None:
    model_id = seed_model(sessions, status="Ready", link=False)
    assert not fold(sessions, model_report(model_id, Phase.SUCCEEDED, SEQ, upstream=upstream()))


# --------------------------------------------------------------------- dataset versions


def test_a_running_version_keeps_its_progress(sessions: SessionFactory) -> None:
    version_id = seed_version(sessions)
    progress = {
        "stage": "hashing",
        "files_done": 3,
        "files_total": 9,
        "bytes_done": 30,
        "bytes_total": 90,
    }
    assert fold(sessions, version_report(version_id, Phase.RUNNING, SEQ, progress=progress))
    version = stored(sessions, DatasetVersion, version_id)
    assert (version.status, version.progress) == ("Running", progress)


def test_a_succeeded_version_records_its_facts(sessions: SessionFactory) -> None:
    version_id = seed_version(sessions)
    fold(sessions, version_report(version_id, Phase.SUCCEEDED, SEQ, version=version_facts()))
    version = stored(sessions, DatasetVersion, version_id)
    assert (version.status, version.system, version.digest) == (
        "Succeeded",
        "dvc",
        "d41d8cd98f00b204e9800998ecf8427e.dir",
    )
    assert (version.file_count, version.total_bytes, version.revision, version.tag) == (
        1,
        10,
        "abc123",
        "ds-v1",
    )
    assert (version.remote_uri, version.files) == ("s3://dvc-remote/ds", FILES)


def test_a_succeeded_version_clears_its_progress(sessions: SessionFactory) -> None:
    version_id = seed_version(sessions)
    progress = {"stage": "pushing", "files_done": 1, "files_total": 1}
    fold(sessions, version_report(version_id, Phase.RUNNING, SEQ, progress=progress))
    fold(sessions, version_report(version_id, Phase.SUCCEEDED, SEQ + 1, version=version_facts()))
    assert stored(sessions, DatasetVersion, version_id).progress is None


def test_a_failed_version_keeps_no_facts(sessions: SessionFactory) -> None:
    """A retried tag whose second attempt failed: the worker left nothing behind."""
    version_id = seed_version(sessions)
    fold(sessions, version_report(version_id, Phase.SUCCEEDED, SEQ, version=version_facts()))
    fold(sessions, version_report(version_id, Phase.FAILED, SEQ + 1, reason="dvc push failed"))
    version = stored(sessions, DatasetVersion, version_id)
    assert (version.status, version.reason) == ("Failed", "dvc push failed")
    assert (version.digest, version.revision, version.tag, version.remote_uri) == (None,) * 4
    assert (version.file_count, version.total_bytes, version.files) == (None, None, None)


def test_a_stale_version_report_is_ignored(sessions: SessionFactory) -> None:
    version_id = seed_version(sessions)
    fold(sessions, version_report(version_id, Phase.SUCCEEDED, SEQ + 2, version=version_facts()))
    assert not fold(sessions, version_report(version_id, Phase.FAILED, SEQ + 1))
    version = stored(sessions, DatasetVersion, version_id)
    assert (version.status, version.digest) == ("Succeeded", "d41d8cd98f00b204e9800998ecf8427e.dir")


def test_a_report_about_an_unknown_version_changes_nothing(sessions: SessionFactory) -> None:
    assert not fold(sessions, version_report("no-such-version", Phase.RUNNING, SEQ))


# --------------------------------------------------------------------- dataset restores


def test_a_running_restore_reports_its_counts(sessions: SessionFactory) -> None:
    restore_id = seed_restore(sessions)
    assert fold(
        sessions, restore_report(restore_id, Phase.RUNNING, SEQ, restore=restore_facts(2, 5))
    )
    restore = stored(sessions, DatasetRestore, restore_id)
    assert (restore.status, restore.files_done, restore.files_total) == ("Running", 2, 5)
    assert (restore.bytes_done, restore.bytes_total) == (20, 50)


def test_a_finished_restore_keeps_its_totals(sessions: SessionFactory) -> None:
    restore_id = seed_restore(sessions)
    fold(sessions, restore_report(restore_id, Phase.RUNNING, SEQ, restore=restore_facts(2, 5)))
    fold(
        sessions, restore_report(restore_id, Phase.SUCCEEDED, SEQ + 1, restore=restore_facts(5, 5))
    )
    restore = stored(sessions, DatasetRestore, restore_id)
    assert (restore.status, restore.files_done, restore.bytes_done) == ("Succeeded", 5, 50)


def test_a_restore_report_without_counts_keeps_the_stored_ones(sessions: SessionFactory) -> None:
    restore_id = seed_restore(sessions)
    fold(sessions, restore_report(restore_id, Phase.RUNNING, SEQ, restore=restore_facts(2, 5)))
    failed = restore_report(restore_id, Phase.FAILED, SEQ + 1, reason="target not writable")
    fold(sessions, failed)
    restore = stored(sessions, DatasetRestore, restore_id)
    assert (restore.status, restore.reason, restore.files_done) == (
        "Failed",
        "target not writable",
        2,
    )


def test_a_stale_restore_report_is_ignored(sessions: SessionFactory) -> None:
    restore_id = seed_restore(sessions)
    fold(
        sessions, restore_report(restore_id, Phase.SUCCEEDED, SEQ + 2, restore=restore_facts(5, 5))
    )
    assert not fold(sessions, restore_report(restore_id, Phase.RUNNING, SEQ + 1))
    restore = stored(sessions, DatasetRestore, restore_id)
    assert (restore.status, restore.files_done) == ("Succeeded", 5)


def test_a_report_about_an_unknown_restore_changes_nothing(sessions: SessionFactory) -> None:
    assert not fold(sessions, restore_report("no-such-restore", Phase.RUNNING, SEQ))
