"""What an online import leaves in the cache for an offline worker, the store's leftovers of
killed workers, and repository ids that would share a directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir

from llmops_registry.adapters.hub_cache import MANIFEST_DIR
from llmops_registry.config import RegistrySettings
from llmops_registry.ports import InvalidModel
from llmops_shared.events import Phase

from integration.registry.helpers import (
    backend_for,
    check_requested,
    import_requested,
    model_facts,
    registry_settings,
    tiny_llama,
    upstream_of,
    with_token,
)
from integration.registry.test_offline_and_updates import handle
from support.hf_hub_server import HubServer

pytestmark = pytest.mark.integration

LLAMA = "acme/tiny-llama"
SIZES = {name: len(content) for name, content in tiny_llama().items()}


def offline_on(online: RegistrySettings, tmp_path: Path) -> RegistrySettings:
    """An offline worker with its own store, on the online worker's cache."""
    offline = registry_settings(tmp_path / "offline", online.hf_endpoint, hf_hub_offline=True)
    return offline.model_copy(update={"hf_cache_dir": online.hf_cache_dir})


async def test_offline_after_an_online_resolve_only_knows_the_whole_commit(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path
) -> None:
    """The reviewer's case: download=False online leaves only config.json (+ refs) cached."""
    sha = hub.add_repo(LLAMA, tiny_llama())
    online = await handle(settings, import_requested(LLAMA, download=False))
    assert online.phase is Phase.SUCCEEDED, online.reason
    storage = settings.hf_cache_dir / "models--acme--tiny-llama"
    assert [p.name for p in (storage / "snapshots" / sha).iterdir()] == ["config.json"]
    assert (storage / "refs" / "main").read_text() == sha
    manifest = json.loads((storage / MANIFEST_DIR / f"{sha}.json").read_text())
    assert {f["path"]: f["size"] for f in manifest["files"]} == SIZES
    scan = scan_cache_dir(settings.hf_cache_dir)  # the client still reads its cache cleanly
    assert scan.warnings == []
    assert [r.repo_id for r in scan.repos] == [LLAMA]

    hub.set_down(True)
    seen = len(hub.requests)
    offline = offline_on(settings, tmp_path)
    wanted = await handle(offline, import_requested(LLAMA, download=True))
    facts_only = await handle(offline, import_requested(LLAMA, download=False))
    assert len(hub.requests) == seen  # offline: not a single request

    assert wanted.phase is Phase.FAILED
    assert wanted.reason == (
        f"{LLAMA} at {sha} is only partly in the offline cache at {settings.hf_cache_dir} "
        "(HF_HUB_OFFLINE=true): 3 of 4 files missing (README.md, model.safetensors, "
        "tokenizer.json); import it online with download=true, or seed it with "
        "huggingface_hub, first"
    )
    assert not (offline.model_store_dir / "acme--tiny-llama" / sha).exists()

    assert facts_only.phase is Phase.SUCCEEDED, facts_only.reason
    assert facts_only.reason == f"imported {LLAMA} at {sha}"
    facts, online_facts = model_facts(facts_only), model_facts(online)
    assert {f.path: f.size for f in facts.files} == SIZES
    assert (facts.safetensors, facts.total_bytes, facts.snapshot_uri) == (True, 203, None)
    # the Hub's facts saved at resolve time, not what the cache happens to hold
    assert facts.model_dump(exclude={"snapshot_uri"}) == online_facts.model_dump(
        exclude={"snapshot_uri"}
    )


async def test_offline_after_an_online_download_materialises_the_whole_commit(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama(), gated=True, license="llama2")
    online = with_token(settings, hub.token)
    first = await handle(online, import_requested(LLAMA, revision="main", download=True))
    assert first.phase is Phase.SUCCEEDED, first.reason
    hub.set_down(True)
    offline = offline_on(online, tmp_path)
    status = await handle(offline, import_requested(LLAMA, download=True))
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert status.reason == f"imported {LLAMA} at {sha} (snapshot downloaded)"
    facts = model_facts(status)
    assert facts.gated is True  # known offline now: saved with the file list
    assert facts.last_modified == model_facts(first).last_modified
    snapshot = offline.model_store_dir / "acme--tiny-llama" / sha
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(SIZES)


async def test_a_cache_without_a_file_list_never_claims_the_whole_commit(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path
) -> None:
    """A cache left by an older worker (refs + config.json, no manifest)."""
    sha = hub.add_repo(LLAMA, tiny_llama())
    await handle(settings, import_requested(LLAMA))
    storage = settings.hf_cache_dir / "models--acme--tiny-llama"
    (storage / MANIFEST_DIR / f"{sha}.json").unlink()
    offline = offline_on(settings, tmp_path)
    status = await handle(offline, import_requested(LLAMA, download=True))
    assert status.phase is Phase.SUCCEEDED, status.reason
    assert status.reason == (
        f"imported {LLAMA} at {sha} (from the offline cache, which has no file list of this "
        "commit: the 1 cached files are reported and materialised, the commit may have more)"
    )
    assert "snapshot downloaded" not in status.reason
    assert [f.path for f in model_facts(status).files] == ["config.json"]


async def test_no_ref_is_recorded_when_the_file_list_cannot_be_saved(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    storage = settings.hf_cache_dir / "models--acme--tiny-llama"
    storage.mkdir(parents=True)
    (storage / ".llmops").write_text("in the way")  # the manifest dir cannot be created
    status = await handle(settings, import_requested(LLAMA))
    assert status.phase is Phase.SUCCEEDED, status.reason  # the online import is not hurt
    assert not (storage / "refs" / "main").exists()
    offline = await handle(offline_on(settings, tmp_path), import_requested(LLAMA))
    assert offline.phase is Phase.FAILED
    assert offline.reason is not None
    assert offline.reason.startswith("revision main of acme/tiny-llama is not in the offline")


async def test_an_incomplete_store_snapshot_is_not_reused(
    hub: HubServer, settings: RegistrySettings
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama())
    await handle(settings, import_requested(LLAMA, download=True))
    snapshot = settings.model_store_dir / "acme--tiny-llama" / sha
    (snapshot / "model.safetensors").unlink()  # removed by hand
    again = await handle(settings, import_requested(LLAMA, download=True))
    assert again.phase is Phase.SUCCEEDED, again.reason
    assert (snapshot / "model.safetensors").stat().st_size == SIZES["model.safetensors"]
    assert [p.name for p in snapshot.parent.iterdir()] == [sha]  # nothing left beside it


def _leftover(repo_dir: Path, name: str, age_s: float) -> Path:
    path = repo_dir / name
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "w.bin").write_bytes(b"half")
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


async def test_leftovers_of_killed_workers_are_swept_at_start_and_before_staging(
    hub: HubServer, settings: RegistrySettings
) -> None:
    sha = hub.add_repo(LLAMA, tiny_llama())
    store = settings.model_store_dir
    old = _leftover(store / "acme--other", f".{sha}.partial-123-0a1b2c3d", 7200)
    legacy = _leftover(store / "acme--other", f".{sha}.partial-0a1b2c3d", 7200)
    young = _leftover(store / "acme--other", f".{sha}.partial-124-0a1b2c3d", 60)
    backend = backend_for(settings)  # start: the whole store
    assert (old.exists(), legacy.exists(), young.exists()) == (False, False, True)

    mine = _leftover(store / "acme--tiny-llama", f".{sha}.partial-125-0a1b2c3d", 7200)
    resolved = await backend.resolve(LLAMA, None)
    assert mine.exists()  # resolve alone stages nothing
    await backend.download(resolved, lambda _: None)
    assert sorted(p.name for p in (store / "acme--tiny-llama").iterdir()) == [sha]


@pytest.mark.parametrize("repo", ["acme--tiny-llama", "acme/-tiny", "acme-/tiny", "a..b", "a/b/c"])
async def test_ids_that_would_share_a_directory_are_refused(
    hub: HubServer, settings: RegistrySettings, tmp_path: Path, repo: str
) -> None:
    hub.add_repo(LLAMA, tiny_llama())
    seen = len(hub.requests)
    for backend in (backend_for(settings), backend_for(offline_on(settings, tmp_path))):
        with pytest.raises(InvalidModel, match="invalid repository id"):
            await backend.resolve(repo, None)
    check = await handle(settings, check_requested(LLAMA, "a" * 40))
    assert upstream_of(check).error is None
    assert len(hub.requests) == seen + 1  # only the check of the valid id went out
    assert not settings.hf_cache_dir.exists()
