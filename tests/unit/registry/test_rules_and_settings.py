"""The registry's rules (family whitelist, context length), settings, store paths, progress
throttling: pure logic, no Hub, no Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmops_registry.adapters.store import SnapshotStore, repo_dir_name, safe_relative_path
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
