"""Rendering and planning of values files, rate-limit waits and settings: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from github import GithubException
from pydantic import SecretStr, ValidationError

from llmops_github_sync.adapters.github_calls import rate_limit_wait
from llmops_github_sync.adapters.mlflow import redact
from llmops_github_sync.config import GithubSyncSettings
from llmops_github_sync.ports import (
    DependencyUnavailableError,
    SyncRejected,
    check_relative_path,
    valid_run_id,
)
from llmops_github_sync.values import HELM_MODEL_PATH, TemplateError, load_template, plan_file
from llmops_github_sync.values_facts import RenderOptions, VersionFacts, max_position_embeddings
from llmops_github_sync.values_yaml import dump

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
    # unreadable (a volume not mounted yet): an outage, the consumer pauses
    with pytest.raises(DependencyUnavailableError, match="cannot be read"):
        load_template(tmp_path / "missing.yaml")
    unparsable = tmp_path / "unparsable.yaml"
    unparsable.write_text("a: [unclosed\n")
    with pytest.raises(TemplateError, match="does not parse"):
        load_template(unparsable)
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


# ---------------------------------------------------------------------------- review findings


def test_run_ids_that_cannot_name_a_file_and_paths_outside_the_repository() -> None:
    assert valid_run_id("0123456789abcdef0123456789abcdef")
    assert valid_run_id("abc123def456")
    assert valid_run_id("run_1-a")
    for bad in ("../../etc/passwd", "a/b", "..", ".hidden", "-x", "a b", "x\n", "", "a" * 65):
        assert not valid_run_id(bad), bad
    assert check_relative_path("values/abc.yaml") == "values/abc.yaml"
    for bad in ("/etc/x.yaml", "../x.yaml", "values/../../x.yaml", "a//b", ".git/hooks/x", ""):
        with pytest.raises(SyncRejected):
            check_relative_path(bad)


def test_mlflow_messages_never_carry_the_tracking_uris_credentials() -> None:
    uri = "http://user:s3cret@mlflow.internal:5000"
    text = (
        f"API request to endpoint /api/2.0/mlflow/runs/get failed: {uri}/api/2.0/mlflow/runs/get "
        "and https://ghp_token@other.host/x"
    )
    shown = redact(text, uri)
    assert "s3cret" not in shown
    assert "ghp_token" not in shown
    assert "http://user:***@mlflow.internal:5000/api/2.0" in shown


def test_an_anchor_on_global_falls_back_to_a_whole_dump() -> None:
    text = b'global: &g\n  runid: abc123def456\n  modelVersion: "0"\nother:\n  <<: *g\n  extra: 1\n'
    updated = plan(text)
    assert updated.action == "updated"
    assert "re-dumped whole" in updated.message
    document = yaml.safe_load(updated.content or b"")
    assert document["global"]["modelVersion"] == "1"
    assert document["other"]["extra"] == 1


def test_a_multi_document_file_edits_the_first_document_only() -> None:
    trailing = GOLDEN.read_bytes() + b"---\n"
    newer = VersionFacts(**{**FACTS.__dict__, "version": "2"})
    updated = plan(trailing, newer)
    assert updated.action == "updated"
    assert updated.content == trailing.replace(b'modelVersion: "1"', b'modelVersion: "2"')
    two = GOLDEN.read_bytes() + b"---\nkind: Other\n# keep me\n"
    updated = plan(two, newer)
    assert updated.content == two.replace(b'modelVersion: "1"', b'modelVersion: "2"')
    assert "Only the first" in updated.message
    with pytest.raises(SyncRejected, match="first is not a mapping"):
        plan(b"- a list\n---\nglobal: {}\n")


def test_an_alias_bomb_is_refused_quickly() -> None:
    import time

    bomb = (
        b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode()
            for i in range(8)
        )
        + b"global: {runid: x}\n"
    )
    started = time.perf_counter()
    with pytest.raises(SyncRejected, match="aliases"):
        plan(bomb)
    assert time.perf_counter() - started < 1
    # a few aliases are fine, and compared as canonical dumps (not alias graphs)
    small = b'base: &b ["x", "y"]\nuse: *b\nglobal:\n  runid: abc123def456\n'
    updated = plan(small)
    assert updated.action == "updated"
    assert updated.content is not None
    assert updated.content.startswith(b'base: &b ["x", "y"]\nuse: *b\nglobal:\n')  # in place
    document = yaml.safe_load(updated.content)
    assert document["use"] == ["x", "y"]
    assert document["global"]["modelVersion"] == "1"


def test_an_older_version_does_not_move_the_file_backwards() -> None:
    v2 = plan(GOLDEN.read_bytes(), VersionFacts(**{**FACTS.__dict__, "version": "2"}))
    assert v2.content is not None
    v1 = plan(v2.content, FACTS)
    assert v1.action == "unchanged"
    assert v1.content is None
    assert "names a newer version (2)" in (v1.note or "")
    other_model = plan(v2.content, VersionFacts(**{**FACTS.__dict__, "model_name": "other"}))
    assert other_model.action == "updated"
    v10 = plan(v2.content, VersionFacts(**{**FACTS.__dict__, "version": "10"}))
    assert v10.action == "updated"  # numerically newer, not "10" < "2"


def test_an_update_lowers_max_model_len_to_the_models_context_never_raises_it() -> None:
    limited = VersionFacts(**{**FACTS.__dict__, "max_position_embeddings": 2048})
    lowered = plan(GOLDEN.read_bytes(), limited)
    assert lowered.action == "updated"
    assert lowered.content == GOLDEN.read_bytes().replace(
        b"maxModelLen: 4096", b"maxModelLen: 2048"
    )
    assert (lowered.max_model_len, lowered.capped) == (2048, True)
    assert "maxModelLen lowered from 4096 to 2048" in lowered.message
    assert "maxModelLen lowered" in (lowered.note or "")
    assert plan(lowered.content, limited).action == "unchanged"
    roomy = VersionFacts(**{**FACTS.__dict__, "max_position_embeddings": 32768})
    assert plan(GOLDEN.read_bytes(), roomy).action == "unchanged"  # never raised
    # with global changes too, and a comment on the line kept
    text = GOLDEN.read_bytes().replace(b"maxModelLen: 4096", b"maxModelLen: 8192  # mine")
    both = plan(text, VersionFacts(**{**limited.__dict__, "version": "3"}))
    assert both.content == text.replace(b'modelVersion: "1"', b'modelVersion: "3"').replace(
        b"maxModelLen: 8192  # mine", b"maxModelLen: 2048  # mine"
    )
