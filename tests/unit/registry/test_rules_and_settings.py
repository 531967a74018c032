"""The registry's rules (family whitelist, context length), settings, store paths, progress
throttling: pure logic, no Hub, no Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llmops_registry.adapters.store import (
    InvalidRepoId,
    SnapshotStore,
    check_repo_id,
    repo_dir_name,
    safe_relative_path,
)
from llmops_registry.config import RegistrySettings
from llmops_registry.handlers import UnsupportedModel, context_length, imported_model
from llmops_registry.ports import InvalidModel, RepoFile, ResolvedModel

pytestmark = pytest.mark.unit

SHA = "0123456789abcdef0123456789abcdef01234567"


def resolved(config: dict[str, Any], files: tuple[RepoFile, ...] = ()) -> ResolvedModel:
    return ResolvedModel(
        repo_id="acme/m",
        revision=SHA,
        url=f"https://hub.example/acme/m/tree/{SHA}",
        config=config,
        files=files or (RepoFile("config.json", 10), RepoFile("model.safetensors", 90)),
        license="mit",
    )


def test_a_whitelisted_model_becomes_imported_facts() -> None:
    facts = imported_model(
        resolved({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "n_positions": 8})
    )
    assert (facts.family, facts.max_position_embeddings, facts.model_type) == ("llama", 8, "llama")
    assert facts.safetensors is True
    assert facts.total_bytes == 100
    assert facts.registry_type == "huggingface"
    assert facts.license == "mit"


def test_the_first_known_architecture_decides_the_family() -> None:
    facts = imported_model(
        resolved({"architectures": ["Custom", "GemmaForCausalLM"], "max_position_embeddings": 2})
    )
    assert facts.family == "gemma"


@pytest.mark.parametrize(
    ("architectures", "reason"),
    [
        (["GPT2LMHeadModel"], "unsupported architecture GPT2LMHeadModel: supported families are "),
        ([], "lists no architectures: supported families are llama, mistral, gemma, bert"),
    ],
)
def test_other_architectures_are_refused(architectures: list[str], reason: str) -> None:
    with pytest.raises(UnsupportedModel, match=reason):
        imported_model(resolved({"architectures": architectures, "n_positions": 1024}))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"max_position_embeddings": 512, "n_positions": 1}, 512),
        ({"n_positions": 1024}, 1024),
        ({"max_sequence_length": 2048}, 2048),
        ({"seq_length": 4096}, 4096),
        ({"max_position_embeddings": None, "seq_length": 7}, 7),
    ],
)
def test_context_length_keys_in_order(config: dict[str, Any], expected: int) -> None:
    assert context_length(config) == expected


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "512", 2**31])
def test_a_bad_context_length_is_malformed(value: object) -> None:
    with pytest.raises(InvalidModel, match="not a positive integer"):
        context_length({"max_position_embeddings": value})


def test_no_context_length_is_named() -> None:
    with pytest.raises(InvalidModel, match="has no max_position_embeddings"):
        context_length({"hidden_size": 4})


def test_settings_read_the_hub_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.local:8080/")
    monkeypatch.setenv("HUGGINGFACE_HUB_TOKEN", "hf_secret_value")
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MODEL_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("HUB_RETRY_ATTEMPTS", "2")
    settings = RegistrySettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.hf_endpoint == "http://mirror.local:8080"
    assert settings.hf_token is not None
    assert settings.hf_token.get_secret_value() == "hf_secret_value"
    assert "hf_secret_value" not in repr(settings)
    assert settings.hf_hub_offline is True
    assert settings.hf_cache_dir == tmp_path / "cache"
    assert settings.model_store_dir == tmp_path / "store"
    assert settings.hub_retry_attempts == 2
    monkeypatch.setenv("HF_TOKEN", "hf_preferred")
    assert RegistrySettings(_env_file=None).hf_token.get_secret_value() == "hf_preferred"  # type: ignore[call-arg,union-attr]


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HUGGINGFACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMOPS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_TOKEN", "  ")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "personal"))  # the client's, not ours
    settings = RegistrySettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.hf_endpoint == "https://huggingface.co"
    assert settings.hf_token is None
    assert settings.hf_hub_offline is False
    assert settings.hf_cache_dir == tmp_path / "hf-cache"
    assert settings.model_store_dir == tmp_path / "models"
    assert (settings.hub_retry_attempts, settings.hub_retry_wait_s, settings.hub_timeout_s) == (
        4,
        1.0,
        30.0,
    )
    assert settings.service_name == "registry"


def test_an_endpoint_must_be_http() -> None:
    with pytest.raises(ValueError, match="must be an http"):
        RegistrySettings(_env_file=None, hf_endpoint="huggingface.co")  # type: ignore[call-arg]


def test_store_layout_and_unsafe_paths(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    assert store.snapshot_dir("owner/name", SHA) == tmp_path / "owner--name" / SHA
    assert repo_dir_name("bert-base-uncased") == "bert-base-uncased"
    for bad in ("../x", "/etc/passwd", "a/../../b", "", "a/.."):
        with pytest.raises(ValueError, match="unsafe"):
            safe_relative_path(bad)
    assert safe_relative_path("1_Pooling/config.json").parts == ("1_Pooling", "config.json")


def test_an_interrupted_snapshot_is_never_visible(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    source = tmp_path / "blob"
    source.write_bytes(b"weights")
    staging = store.staging("a/b", SHA)
    store.place(source, staging, "sub/w.bin")
    assert store.existing("a/b", SHA) is None
    final = store.commit(staging, store.snapshot_dir("a/b", SHA))
    assert store.existing("a/b", SHA) == final
    assert (final / "sub" / "w.bin").read_bytes() == b"weights"
    loser = store.staging("a/b", SHA)  # a second, concurrent download of the same commit
    assert store.commit(loser, final) == final
    assert not loser.exists()


def test_importing_the_service_does_not_import_huggingface_hub() -> None:
    code = (
        "import sys, llmops_registry.app, llmops_registry.handlers; "
        "print('huggingface_hub' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "repo", ["a--b", "a/-b", "a-/b", "a..b", "a/b/c", "", "a/", "/b", ".a", "a.", "a b", "a\\b"]
)
def test_repo_ids_outside_the_hub_rule_have_no_directory(tmp_path: Path, repo: str) -> None:
    with pytest.raises(InvalidRepoId):
        check_repo_id(repo)
    with pytest.raises(ValueError, match="invalid repository id"):
        SnapshotStore(tmp_path).snapshot_dir(repo, SHA)


def test_repo_dir_names_are_one_to_one() -> None:
    ids = ["a/b", "a-b", "ab", "a/b-c", "a-b/c", "a.b/c", "a/b.c", "a_b/c", "a/b_c", "b/a"]
    assert len({repo_dir_name(i) for i in ids}) == len(ids)
    assert repo_dir_name("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers--all-MiniLM-L6-v2"
    )


def _old(path: Path, age_s: float = 7200) -> Path:
    path.mkdir(parents=True)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_sweep_removes_only_old_unlocked_staging_dirs(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    live = store.staging("a/b", SHA)  # this process's own, in progress
    os.utime(live, (0, 0))
    dead = _old(tmp_path / "a--b" / f".{SHA}.partial-1-deadbeef")
    young = _old(tmp_path / "a--b" / f".{SHA}.partial-2-deadbeef", age_s=10)
    snapshot = _old(tmp_path / "a--b" / SHA)
    other = _old(tmp_path / "a--b" / ".keep")
    assert store.sweep() == [dead]
    assert all(p.exists() for p in (live, young, snapshot, other))
    store.discard(live)
    assert not live.exists()


def test_sweep_never_removes_a_dir_another_process_holds(tmp_path: Path) -> None:
    """A live download in another process (or another replica on the same volume) holds the
    flock of its staging dir, however old the dir looks."""
    held = _old(tmp_path / "a--b" / f".{SHA}.partial-99-deadbeef")
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(held)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        store = SnapshotStore(tmp_path, stale_after_s=0)
        assert store.sweep() == []
        assert held.exists()
    finally:
        holder.kill()  # the worker dies mid-download: its lock goes with it
        holder.wait()
    assert store.sweep() == [held]


def test_a_killed_worker_leaves_a_sweepable_staging_dir(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from llmops_registry.adapters.store import SnapshotStore\n"
        f"print(SnapshotStore(Path(sys.argv[1])).staging('a/b', '{SHA}'), flush=True)\n"
        "os._exit(0)\n"  # no discard, no cleanup: as if killed
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    left = Path(out.stdout.strip())
    assert left.is_dir()
    assert left.name.startswith(f".{SHA}.partial-")  # the pid of the dead worker follows
    assert SnapshotStore(tmp_path).sweep() == []  # fresh: kept (the default threshold is 1 h)
    assert SnapshotStore(tmp_path, stale_after_s=0).sweep() == [left]
