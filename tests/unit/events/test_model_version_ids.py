"""Deterministic ids of model-version events (the contract both tracking paths follow)."""

from __future__ import annotations

import pytest

from llmops_shared.events import ModelVersionRegistered, model_version_event_id

pytestmark = pytest.mark.unit


def test_the_id_is_deterministic_and_names_the_version_by_its_creation_time() -> None:
    first = model_version_event_id("m", "1", 1_700_000_000_000)
    assert first == model_version_event_id("m", "1", 1_700_000_000_000)
    # the same name and number registered again later is another version
    assert first != model_version_event_id("m", "1", 1_700_000_000_001)
    assert first != model_version_event_id("m", "1", 1_700_000_000_000, "tag_set:k:d-1")


@pytest.mark.parametrize("run_id", ["../x", "a/b", "a\\b", "_x", "a" * 65, "a b"])
def test_a_path_like_run_id_is_refused_at_decode_time(run_id: str) -> None:
    data = {
        "model_name": "m",
        "version": "1",
        "run_id": run_id,
        "source": "s3://b/k",
        "created_at": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(ValueError, match="run_id"):
        ModelVersionRegistered.model_validate(data)
    assert ModelVersionRegistered.model_validate({**data, "run_id": "0f1e2d3c" * 4}).run_id
