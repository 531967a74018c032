"""Rendering and planning of values files, rate-limit waits and settings: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from github import GithubException
from pydantic import SecretStr, ValidationError

from llmops_github_sync.adapters.github import rate_limit_wait
from llmops_github_sync.config import GithubSyncSettings
from llmops_github_sync.values import (
    HELM_MODEL_PATH,
    RenderOptions,
    TemplateError,
    VersionFacts,
    dump,
    load_template,
    max_position_embeddings,
    plan_file,
)

pytestmark = pytest.mark.unit
GOLDEN = Path(__file__).parent / "golden" / "new_run.yaml"
FACTS = VersionFacts(
    "Qwen/Qwen3-0.6B", "1", "abc123def456", "1", datetime(2024, 1, 1, 12, tzinfo=UTC)
)


def plan(current: bytes | None, facts: VersionFacts = FACTS, **options: object):  # type: ignore[no-untyped-def]
    return plan_file(
        "abc123def456.yaml",
        current,
        template=load_template(None),
        facts=facts,
        options=RenderOptions(**options),  # type: ignore[arg-type]
    )


def test_new_file_matches_the_golden_seed_structure() -> None:
    created = plan(None)
    assert created.action == "created"
    assert created.content == GOLDEN.read_bytes()
    document = yaml.safe_load(created.content or b"")
    assert document["global"]["experimentId"] == "1"  # a string, as in the seed
    assert document["global"]["timestamp"] == 20240101  # YYYYMMDD int
    assert document["vllm"]["vllm"]["model"] == HELM_MODEL_PATH  # the Helm expression, literal


def test_update_touches_only_global_and_keeps_edits_byte_for_byte() -> None:
    custom = (
        b"# my notes\n"
        + GOLDEN.read_bytes().replace(b"maxModelLen: 4096", b"maxModelLen: 8192 # bigger")
        + b"\nextra:\n  - {a: 1}\n"
    )
    newer = VersionFacts("other", "7", "abc123def456", "2", datetime(2025, 3, 4, tzinfo=UTC))
    updated = plan(custom, newer)
    assert updated.action == "updated"
    expected = (
        custom.replace(b'experimentId: "1"', b'experimentId: "2"')
        .replace(b"timestamp: 20240101", b"timestamp: 20250304")
        .replace(b"modelName: Qwen/Qwen3-0.6B", b"modelName: other")
        .replace(b'modelVersion: "1"', b'modelVersion: "7"')
    )
    assert updated.content == expected
    assert "experimentId, modelName, modelVersion, timestamp" in updated.message
    assert plan(updated.content, newer).action == "unchanged"


def test_global_with_extra_keys_keeps_them_and_a_flow_document_is_redumped() -> None:
    text = b"global: {runid: old, team: nlp}\nvllm: {vllm: {maxModelLen: 10}}\n"
    updated = plan(text)
    document = yaml.safe_load(updated.content or b"")
    assert document["global"]["team"] == "nlp"
    assert document["global"]["runid"] == "abc123def456"
    assert document["vllm"] == {"vllm": {"maxModelLen": 10}}


@pytest.mark.parametrize("corrupt", [b"key: [unclosed", b"- a list\n", b"", b"\xff\xfe"])
def test_corrupt_files_are_regenerated(corrupt: bytes) -> None:
    regenerated = plan(corrupt)
    assert regenerated.action == "regenerated"
    assert regenerated.content == GOLDEN.read_bytes()
    assert "stays in this file's history" in regenerated.message


def test_max_model_len_is_capped_and_said_so() -> None:
    capped = plan(None, VersionFacts(**{**FACTS.__dict__, "max_position_embeddings": 512}))
    assert (capped.max_model_len, capped.capped) == (512, True)
    assert "maxModelLen capped to 512" in capped.message
    assert plan(None, max_model_len=256).max_model_len == 256
    assert max_position_embeddings({"llmops.max_position_embeddings": "2048"}) == 2048
    assert max_position_embeddings({"max_position_embeddings": "x"}) is None


def test_template_errors_and_a_custom_template(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a mapping\n")
    with pytest.raises(TemplateError, match="not a YAML mapping"):
        load_template(bad)
    with pytest.raises(TemplateError, match="cannot be read"):
        load_template(tmp_path / "missing.yaml")
    custom = tmp_path / "values.yaml"
    custom.write_text("replicaCount: 2\nvllm:\n  vllm:\n    model: /models/x\n")
    created = plan_file(
        "r.yaml", None, template=load_template(custom), facts=FACTS, options=RenderOptions()
    )
    document = yaml.safe_load(created.content or b"")
    assert document["replicaCount"] == 2
    assert document["vllm"]["vllm"]["model"] == "/models/x"
    assert document["vllm"]["vllm"]["served_model_name"] == "Qwen/Qwen3-0.6B"


def test_dump_quotes_what_would_read_as_another_type() -> None:
    assert (
        dump({"a": "1", "b": "true", "c": "text", "d": 1}) == 'a: "1"\nb: "true"\nc: text\nd: 1\n'
    )


def test_rate_limit_wait() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    after = GithubException(403, {"message": "x"}, {"Retry-After": "7"})
    assert rate_limit_wait(after, now) == 7.0
    reset = GithubException(
        403,
        {"message": "API rate limit exceeded"},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now.timestamp()) + 30)},
    )
    assert rate_limit_wait(reset, now) == 31.0
    assert rate_limit_wait(GithubException(403, {"message": "Forbidden"}, {}), now) is None
    assert rate_limit_wait(GithubException(404, {}, {}), now) is None


def test_settings_choose_the_backend_and_hide_secrets(tmp_path: Path) -> None:
    base = {"_env_file": None, "work_dir": tmp_path}
    assert GithubSyncSettings(**base).backend == "git"  # type: ignore[arg-type]
    s = GithubSyncSettings(
        **base,  # type: ignore[arg-type]
        github_token=SecretStr("ghp_secret"),
        github_repo_owner="o",
        github_repo_name="r",
    )
    assert s.backend == "github"
    assert s.health_port == 8086
    assert "ghp_secret" not in repr(s)
    with pytest.raises(ValidationError, match="GITHUB_REPO_OWNER"):
        GithubSyncSettings(**base, github_token=SecretStr("t"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="pull_request"):
        GithubSyncSettings(**base, sync_mode="pull_request")  # type: ignore[arg-type]
    app = GithubSyncSettings(
        **base,  # type: ignore[arg-type]
        github_app_id="1",
        github_app_private_key=SecretStr("pem"),
        github_app_installation_id=2,
        github_repo_owner="o",
        github_repo_name="r",
    )
    assert app.backend == "github"
    assert app.app_auth_configured
