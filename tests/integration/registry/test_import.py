"""Imports through the handler and the real huggingface_hub client, against the Hub test double.

No Redis here (the handler is called directly, progress goes to an in-memory sink); the
runtime path is in test_worker_runtime.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from llmops_registry.config import RegistrySettings
from llmops_registry.handlers import handle_catalog_event
from llmops_shared.events import Phase

from integration.registry.helpers import (
    GPT2_CONFIG,
    TOKEN_VALUE,
    RecordingSink,
    import_requested,
    model_facts,
    ports_for,
    progress_of,
    received,
    registry_settings,
    status_of,
    tiny_llama,
    with_token,
)
from support.hf_hub_server import MINILM_REPO, HubServer, minilm_dir

pytestmark = pytest.mark.integration

LLAMA = "acme/tiny-llama"


async def run_import(settings: RegistrySettings, sink: RecordingSink | None = None, **kw: object):
    """Handle one ModelImportRequested; returns the final status and the progress statuses."""
    envelope = import_requested(**kw)  # type: ignore[arg-type]
    outputs = await handle_catalog_event(received(envelope), ports_for(settings, sink))
    assert len(outputs) == 1
    return status_of(outputs[0])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_minilm_import_reports_the_facts_pinned_to_the_commit(
    hub: HubServer, settings: RegistrySettings, sink: RecordingSink
) -> None:
    sha = hub.add_minilm()
    status = await run_import(settings, sink, repo=MINILM_REPO)

    assert status.phase is Phase.SUCCEEDED, status.reason
    assert status.reporter == "registry"
    facts = model_facts(status)
    assert facts.repo_id == MINILM_REPO
    assert facts.revision == sha
    assert facts.url == f"{hub.url}/{MINILM_REPO}/tree/{sha}"
    assert facts.architectures == ["BertModel"]
    assert facts.model_type == "bert"
    assert facts.family == "bert"
    assert facts.max_position_embeddings == 512
    assert facts.safetensors is True
    assert facts.license == "apache-2.0"
    assert (facts.gated, facts.private) == (False, False)
    assert facts.snapshot_uri is None
    source = minilm_dir()
    expected = {
        p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()
    }
    assert {f.path: f.size for f in facts.files} == expected
    assert facts.total_bytes == sum(expected.values())
    assert facts.last_modified is not None
    # metadata only: config.json is the one file fetched, the weights are not
    downloads = hub.paths("GET")
    assert not any(p.endswith("model.safetensors") for p in downloads)
    assert any(p.endswith(f"/resolve/{sha}/config.json") for p in downloads)
    # a Running "resolving" report went out first
    assert [s.phase for s in sink.statuses()] == [Phase.RUNNING]
    assert progress_of(sink.statuses()[0]).stage == "resolving"
    assert sink.statuses()[0].seq < status.seq


async def test_minilm_download_writes_an_identical_snapshot_with_progress(
    hub: HubServer, settings: RegistrySettings, sink: RecordingSink
) -> None:
    sha = hub.add_minilm()
    status = await run_import(settings, sink, repo=MINILM_REPO, download=True)

    assert status.phase is Phase.SUCCEEDED, status.reason
    facts = model_facts(status)
    snapshot = settings.model_store_dir / "sentence-transformers--all-MiniLM-L6-v2" / sha
    assert facts.snapshot_uri == snapshot.resolve().as_uri()
    source = minilm_dir()
    expected = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    written = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert written == expected
    for name in expected:
        assert (snapshot / name).stat().st_size == (source / name).stat().st_size
    assert _sha256(snapshot / "model.safetensors") == _sha256(source / "model.safetensors")
    assert (snapshot / "config.json").read_bytes() == (source / "config.json").read_bytes()
    assert not [p for p in snapshot.parent.iterdir() if p.name.startswith(".")]  # no staging left

    progress = sink.statuses()
    assert progress
    assert all(s.phase is Phase.RUNNING for s in progress)
    assert all(s.seq < status.seq for s in progress)
    stages = [progress_of(s) for s in progress]
    assert stages[0].stage == "resolving"
    downloading = [p for p in stages if p.stage == "downloading"]
    assert downloading, "no downloading progress was reported"
    assert all(p.files_total == len(expected) for p in downloading)
    assert all(p.bytes_total == facts.total_bytes for p in downloading)
    assert max(p.bytes_done for p in downloading) > 0
    assert [p.bytes_done for p in downloading] == sorted(p.bytes_done for p in downloading)


async def test_redelivered_import_reports_the_same_facts_without_downloading_again(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    envelope = import_requested(LLAMA, download=True)
    ports = ports_for(settings)
    first = status_of((await handle_catalog_event(received(envelope), ports))[0])
    gets_before = len(hub.paths("GET"))
    again = status_of((await handle_catalog_event(received(envelope), ports_for(settings)))[0])

    assert first.phase is again.phase is Phase.SUCCEEDED
    assert model_facts(first) == model_facts(again)
    new_gets = hub.paths("GET")[gets_before:]
    assert [p for p in new_gets if "/resolve/" in p] == []  # snapshot and config.json reused
    assert again.seq > first.seq


async def test_a_branch_or_tag_is_pinned_to_its_commit(
    hub: HubServer, settings: RegistrySettings
) -> None:
    first = hub.add_repo(LLAMA, tiny_llama())
    hub.create_tag(LLAMA, "v1.0")
    second = hub.push(LLAMA, {"tokenizer.json": b'{"version": "2.0"}'})
    hub.create_branch(LLAMA, "dev", first)

    tagged = await run_import(settings, repo=LLAMA, revision="v1.0")
    branch = await run_import(settings, repo=LLAMA, revision="dev")
    head = await run_import(settings, repo=LLAMA)
    by_sha = await run_import(settings, repo=LLAMA, revision=second)

    assert model_facts(tagged).revision == first
    assert model_facts(branch).revision == first
    assert model_facts(head).revision == second
    assert model_facts(by_sha).revision == second
    assert model_facts(head).family == "llama"
    assert model_facts(head).max_position_embeddings == 4096
    assert model_facts(head).license == "apache-2.0"


async def test_unknown_repo_fails_with_a_clear_reason(
    hub: HubServer, settings: RegistrySettings
) -> None:
    status = await run_import(settings, repo="nobody/nothing")
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert status.reason.startswith(f"repository nobody/nothing not found on {hub.url}")
    assert "HF_TOKEN" in status.reason  # the hint for a private repository
    assert len(hub.paths()) == 1  # a 404 is not retried


async def test_unknown_revision_fails(hub: HubServer, settings: RegistrySettings) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    status = await run_import(settings, repo=LLAMA, revision="no-such-branch")
    assert status.phase is Phase.FAILED
    assert status.reason == f"revision no-such-branch not found in repository {LLAMA} on {hub.url}"


async def test_gated_repo_needs_the_token(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path
) -> None:
    hub.add_repo("meta/gated-llama", tiny_llama(), gated=True, license="llama2")

    denied = await run_import(settings, repo="meta/gated-llama", download=True)
    assert denied.phase is Phase.FAILED
    assert denied.reason is not None
    assert "gated" in denied.reason
    assert "HF_TOKEN is not set" in denied.reason
    assert not (settings.model_store_dir / "meta--gated-llama").exists()

    granted = await run_import(
        with_token(settings, TOKEN_VALUE), repo="meta/gated-llama", download=True
    )
    assert granted.phase is Phase.SUCCEEDED, granted.reason
    facts = model_facts(granted)
    assert facts.gated is True
    assert facts.license == "llama2"
    assert facts.snapshot_uri is not None
    assert TOKEN_VALUE not in granted.model_dump_json()


async def test_wrong_token_on_a_gated_repo_is_named(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo("meta/gated-llama", tiny_llama(), gated=True)
    status = await run_import(with_token(settings, "hf_wrong"), repo="meta/gated-llama")
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert "has not been granted access" in status.reason
    assert "HF_TOKEN" in status.reason
    assert "hf_wrong" not in status.reason


async def test_private_repo_is_not_found_without_the_token(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo("acme/secret", tiny_llama(), private=True)
    hidden = await run_import(settings, repo="acme/secret")
    assert hidden.phase is Phase.FAILED
    assert hidden.reason is not None
    assert "HF_TOKEN" in hidden.reason

    status = await run_import(with_token(settings, TOKEN_VALUE), repo="acme/secret")
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert model_facts(status).private is True


async def test_unsupported_architecture_fails_before_any_download(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(
        "openai/tiny-gpt2",
        {"config.json": GPT2_CONFIG, "model.safetensors": b"\x00" * 64},
    )
    status = await run_import(settings, repo="openai/tiny-gpt2", download=True)
    assert status.phase is Phase.FAILED
    assert status.reason == (
        "unsupported architecture GPT2LMHeadModel: supported families are "
        "llama, mistral, gemma, bert"
    )
    assert not any(p.endswith("model.safetensors") for p in hub.paths())
    assert not (settings.model_store_dir / "openai--tiny-gpt2").exists()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b"{not json", "is malformed: not valid JSON"),
        (b"[1, 2]", "is malformed: not a JSON object"),
        (b'{"architectures": "LlamaForCausalLM"}', "architectures is not a list of strings"),
        (
            b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}',
            "has no max_position_embeddings",
        ),
        (
            b'{"architectures": ["LlamaForCausalLM"], "max_position_embeddings": "4k"}',
            "max_position_embeddings is '4k', not a positive integer",
        ),
    ],
)
async def test_malformed_config_fails(
    hub: HubServer, settings: RegistrySettings, config: bytes, expected: str
) -> None:
    hub.add_repo(LLAMA, {"config.json": config})
    status = await run_import(settings, repo=LLAMA, download=True)
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert expected in status.reason, status.reason
    assert f"config.json of {LLAMA}" in status.reason


async def test_context_length_falls_back_to_other_keys(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(
        LLAMA,
        {"config.json": b'{"architectures": ["MistralForCausalLM"], "seq_length": 32768}'},
    )
    status = await run_import(settings, repo=LLAMA)
    facts = model_facts(status)
    assert (facts.family, facts.max_position_embeddings, facts.safetensors) == (
        "mistral",
        32768,
        False,
    )


async def test_repo_without_config_fails(hub: HubServer, settings: RegistrySettings) -> None:
    hub.add_repo(LLAMA, {"README.md": b"# nothing here"})
    status = await run_import(settings, repo=LLAMA)
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert "has no config.json" in status.reason


async def test_hub_down_is_retried_then_fails_with_the_reason(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    hub.set_down(True)
    status = await run_import(settings, repo=LLAMA, download=True)
    assert status.phase is Phase.FAILED
    assert status.reason == (
        f"Hugging Face Hub unreachable at {hub.url} after 3 attempts: HTTP 503 Service Unavailable"
    )
    assert hub.paths() == [f"/api/models/{LLAMA}"] * 3
    assert not (settings.model_store_dir / "acme--tiny-llama").exists()


async def test_hub_back_after_a_few_failures_succeeds(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    hub.fail_next(2, 503)
    status = await run_import(settings, repo=LLAMA, download=True)
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert hub.paths()[:3] == [f"/api/models/{LLAMA}"] * 3


async def test_rate_limit_and_failures_mid_download_are_retried(
    hub: HubServer, settings: RegistrySettings
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama())
    ports = ports_for(settings)
    resolved = await ports.backend.resolve(LLAMA, None)
    hub.fail_next(1, 429)  # the HEAD of the first file
    uri = await ports.backend.download(resolved, lambda _: None)
    snapshot = settings.model_store_dir / "acme--tiny-llama" / sha
    assert uri == snapshot.resolve().as_uri()
    assert (snapshot / "tokenizer.json").read_bytes() == b'{"version": "1.0"}'


async def test_unreachable_endpoint_fails_after_the_retries(tmp_path: Path) -> None:
    settings = registry_settings(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    status = await run_import(settings, repo=LLAMA)
    assert status.phase is Phase.FAILED
    assert status.reason is not None
    assert status.reason.startswith(
        "Hugging Face Hub unreachable at http://127.0.0.1:9 after 3 attempts: ConnectError"
    )


async def test_a_failed_download_leaves_no_partial_snapshot(
    hub: HubServer, settings: RegistrySettings
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    ports = ports_for(settings)
    resolved = await ports.backend.resolve(LLAMA, None)
    hub.set_down(True)
    with pytest.raises(Exception, match="unreachable"):
        await ports.backend.download(resolved, lambda _: None)
    repo_dir = settings.model_store_dir / "acme--tiny-llama"
    assert list(repo_dir.iterdir()) == []
