"""Offline imports from a seeded huggingface_hub cache, and upstream update checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi

from llmops_registry.config import RegistrySettings
from llmops_registry.handlers import handle_catalog_event
from llmops_shared.events import Phase

from integration.registry.helpers import (
    check_requested,
    import_requested,
    model_facts,
    ports_for,
    received,
    registry_settings,
    status_of,
    tiny_llama,
    upstream_of,
)
from support.hf_hub_server import HubServer

pytestmark = pytest.mark.integration

LLAMA = "acme/tiny-llama"


def seed_cache(hub: HubServer, cache_dir: Path, repo: str, revision: str | None = None) -> str:
    """What an operator does before going offline: download the repo with huggingface_hub."""
    api = HfApi(endpoint=hub.url, token=False)
    path = api.snapshot_download(repo, revision=revision, cache_dir=cache_dir)
    return Path(path).name


async def handle(settings: RegistrySettings, envelope: object):  # type: ignore[no-untyped-def]
    outputs = await handle_catalog_event(received(envelope), ports_for(settings))  # type: ignore[arg-type]
    assert len(outputs) == 1
    return status_of(outputs[0])


async def test_offline_import_reads_the_seeded_cache_without_any_request(
    hub: HubServer, tmp_path: Path
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama())
    hub.create_tag(LLAMA, "v1")
    hub.push(LLAMA, {"tokenizer.json": b'{"version": "2.0"}'})
    cache = tmp_path / "hf-cache"
    seed_cache(hub, cache, LLAMA, "v1")
    newest = seed_cache(hub, cache, LLAMA)
    hub.set_down(True)
    seen = len(hub.requests)
    offline = registry_settings(tmp_path, hub.url, hf_hub_offline=True)

    pinned = await handle(offline, import_requested(LLAMA, revision="v1", download=True))
    head = await handle(offline, import_requested(LLAMA))

    assert len(hub.requests) == seen  # not a single request
    assert pinned.phase is Phase.SUCCEEDED, pinned.reason
    facts = model_facts(pinned)
    assert facts.revision == sha
    assert (facts.family, facts.max_position_embeddings, facts.safetensors) == ("llama", 4096, True)
    assert facts.license == "llama2"  # from the cached model card
    assert {f.path: f.size for f in facts.files} == {
        name: len(content) for name, content in tiny_llama().items()
    }
    snapshot = offline.model_store_dir / "acme--tiny-llama" / sha
    assert facts.snapshot_uri == snapshot.resolve().as_uri()
    assert (snapshot / "tokenizer.json").read_bytes() == b'{"version": "1.0"}'
    assert model_facts(head).revision == newest


async def test_offline_import_of_an_uncached_repo_fails(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    cache = tmp_path / "hf-cache"
    seed_cache(hub, cache, LLAMA)
    offline = registry_settings(tmp_path, hub.url, hf_hub_offline=True)

    missing = await handle(offline, import_requested("acme/elsewhere"))
    assert missing.phase is Phase.FAILED
    assert missing.reason == (
        f"repository acme/elsewhere is not in the offline cache at {cache} "
        "(HF_HUB_OFFLINE=true); seed it with huggingface_hub first"
    )
    no_rev = await handle(offline, import_requested(LLAMA, revision="v9"))
    assert no_rev.phase is Phase.FAILED
    assert no_rev.reason is not None
    assert "revision v9 of acme/tiny-llama is not in the offline cache" in no_rev.reason


async def test_the_online_import_seeds_the_offline_cache(hub: HubServer, tmp_path: Path) -> None:
    """An import with download=True leaves every file in the cache: the worker can go offline."""
    sha = hub.add_repo(LLAMA, tiny_llama())
    online = registry_settings(tmp_path, hub.url)
    assert (await handle(online, import_requested(LLAMA, download=True))).phase is Phase.SUCCEEDED
    hub.stop()
    offline = registry_settings(tmp_path / "other-store", hub.url, hf_hub_offline=True)
    offline = offline.model_copy(update={"hf_cache_dir": online.hf_cache_dir})
    status = await handle(offline, import_requested(LLAMA, download=True))
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert model_facts(status).revision == sha


async def test_update_check_reports_not_updated_then_the_new_commit(
    hub: HubServer, settings: RegistrySettings
) -> None:
    first = hub.add_repo(LLAMA, tiny_llama())

    same = await handle(settings, check_requested(LLAMA, first))
    assert same.phase is Phase.SUCCEEDED
    check = upstream_of(same)
    assert (check.pinned_revision, check.upstream_revision, check.updated, check.error) == (
        first,
        first,
        False,
        None,
    )

    second = hub.push(LLAMA, {"README.md": b"---\nlicense: llama2\n---\n# v2\n"})
    moved = await handle(settings, check_requested(LLAMA, first))
    assert moved.phase is Phase.SUCCEEDED
    assert moved.reason == f"upstream updated: {second} (pinned {first})"
    check = upstream_of(moved)
    assert (check.upstream_revision, check.updated) == (second, True)
    assert check.checked_at.tzinfo is not None
    assert not any("/resolve/" in p for p in hub.paths())  # a check downloads nothing


async def test_update_check_follows_the_imported_branch(
    hub: HubServer, settings: RegistrySettings
) -> None:
    first = hub.add_repo(LLAMA, tiny_llama())
    hub.create_branch(LLAMA, "stable")
    hub.push(LLAMA, {"tokenizer.json": b"{}"})  # main moves, stable does not
    status = await handle(settings, check_requested(LLAMA, first, revision="stable"))
    assert upstream_of(status).updated is False


async def test_update_check_with_the_hub_down_answers_with_an_error(
    hub: HubServer, settings: RegistrySettings
) -> None:
    first = hub.add_repo(LLAMA, tiny_llama())
    hub.set_down(True)
    status = await handle(settings, check_requested(LLAMA, first))
    assert status.phase is Phase.SUCCEEDED  # the model's phase is not the check's business
    check = upstream_of(status)
    assert check.upstream_revision is None
    assert check.updated is False
    assert check.error == (
        f"Hugging Face Hub unreachable at {hub.url} after 3 attempts: HTTP 503 Service Unavailable"
    )
    assert len(hub.requests) == 3


async def test_update_check_of_a_deleted_repo_answers_with_an_error(
    hub: HubServer, settings: RegistrySettings
) -> None:
    status = await handle(settings, check_requested("acme/gone", "a" * 40))
    check = upstream_of(status)
    assert check.error is not None
    assert check.error.startswith("repository acme/gone not found")
    assert status.reason == f"update check failed: {check.error}"


async def test_update_check_offline_says_so(hub: HubServer, tmp_path: Path) -> None:
    offline = registry_settings(tmp_path, hub.url, hf_hub_offline=True)
    status = await handle(offline, check_requested(LLAMA, "a" * 40))
    check = upstream_of(status)
    assert status.phase is Phase.SUCCEEDED
    assert check.error is not None
    assert check.error.startswith("offline mode")
    assert (check.upstream_revision, check.updated) == (None, False)
    assert hub.requests == []
