"""Events, settings, a recording sink and small Hub repositories for the registry tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from llmops_registry.adapters.huggingface import HubBackend
from llmops_registry.adapters.store import SnapshotStore
from llmops_registry.config import RegistrySettings
from llmops_registry.ports import RegistryPorts
from llmops_shared.events import (
    Envelope,
    Event,
    ModelImportRequested,
    ModelStatusUpdated,
    ModelUpdateCheckRequested,
    decode_event,
    encode_event,
    new_event,
)
from llmops_shared.events.payloads.catalog import ImportedModel, ImportProgress, UpstreamCheck

from support.streams import FAST_CONSUMER, details_of

CORRELATION_ID = "req-registry-test"
TOKEN_VALUE = "hf_test_token"


def new_model_id() -> str:
    return str(uuid.uuid4())


def import_requested(
    repo: str, *, model_id: str | None = None, revision: str | None = None, download: bool = False
) -> Envelope:
    payload = ModelImportRequested(
        model_id=model_id or new_model_id(),
        registry_type="huggingface",
        registry_model_id=repo,
        revision=revision,
        download=download,
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def check_requested(
    repo: str, pinned: str, *, model_id: str | None = None, revision: str | None = None
) -> Envelope:
    payload = ModelUpdateCheckRequested(
        model_id=model_id or new_model_id(),
        registry_type="huggingface",
        registry_model_id=repo,
        revision=revision,
        pinned_revision=pinned,
    )
    return new_event(payload, source="gateway", correlation_id=CORRELATION_ID)


def received(envelope: Envelope) -> Event:
    """The event as a consumer decodes it off the stream."""
    return decode_event(encode_event(envelope))


def status_of(envelope: Envelope) -> ModelStatusUpdated:
    return received(envelope).payload_as(ModelStatusUpdated)


def model_facts(status: ModelStatusUpdated) -> ImportedModel:
    return ImportedModel.model_validate(details_of(status)["model"])


def progress_of(status: ModelStatusUpdated) -> ImportProgress:
    return ImportProgress.model_validate(details_of(status)["progress"])


def upstream_of(status: ModelStatusUpdated) -> UpstreamCheck:
    return UpstreamCheck.model_validate(details_of(status)["upstream"])


class RecordingSink:
    """A :class:`~llmops_registry.ports.StatusSink` that keeps what it is given (in memory: the
    runtime tests use the real publisher)."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return f"0-{len(self.envelopes)}"

    def statuses(self) -> list[ModelStatusUpdated]:
        return [status_of(e) for e in self.envelopes]


def registry_settings(tmp_path: Path, endpoint: str, **overrides: Any) -> RegistrySettings:
    """Settings with private cache and store dirs and tiny retry waits; no ``.env`` read."""
    values: dict[str, Any] = {
        "hf_endpoint": endpoint,
        "hf_cache_dir": tmp_path / "hf-cache",
        "model_store_dir": tmp_path / "models",
        "hub_retry_attempts": 3,
        "hub_retry_wait_s": 0.01,
        "hub_timeout_s": 5,
        "progress_interval_s": 0.0,
        "health_port": 0,
        "log_json": False,
        **overrides,
    }
    return RegistrySettings(_env_file=None, **values)  # type: ignore[call-arg]


def with_token(settings: RegistrySettings, token: str) -> RegistrySettings:
    """The same settings with ``HF_TOKEN`` set."""
    return settings.model_copy(update={"hf_token": SecretStr(token)})


def worker_settings(
    redis_url: str, namespace: str, tmp_path: Path, endpoint: str, **overrides: Any
) -> RegistrySettings:
    """Settings of an in-process worker on its own stream namespace."""
    return registry_settings(
        tmp_path,
        endpoint,
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER.model_copy(
            update={"claim_idle_ms": 60_000, "retry_max_backoff_s": 0.05}
        ),
        **overrides,
    )


def backend_for(settings: RegistrySettings) -> HubBackend:
    """The adapter built exactly as ``app.build_backend`` builds it."""
    return HubBackend(
        endpoint=settings.hf_endpoint,
        token=settings.hf_token,
        cache_dir=settings.hf_cache_dir,
        store=SnapshotStore(settings.model_store_dir),
        offline=settings.hf_hub_offline,
        retry_attempts=settings.hub_retry_attempts,
        retry_wait_s=settings.hub_retry_wait_s,
        timeout_s=settings.hub_timeout_s,
    )


def ports_for(settings: RegistrySettings, sink: RecordingSink | None = None) -> RegistryPorts:
    return RegistryPorts(
        backend=backend_for(settings),
        sink=sink,
        progress_interval_s=settings.progress_interval_s,
    )


def config_json(**fields: Any) -> bytes:
    return json.dumps(fields, indent=2).encode()


LLAMA_CONFIG = config_json(
    architectures=["LlamaForCausalLM"],
    model_type="llama",
    max_position_embeddings=4096,
    hidden_size=64,
)
GPT2_CONFIG = config_json(
    architectures=["GPT2LMHeadModel"], model_type="gpt2", n_positions=1024, n_embd=64
)


def tiny_llama(extra: bytes = b"") -> dict[str, bytes]:
    """A small llama-like repository (config, tokenizer, 'weights')."""
    return {
        "config.json": LLAMA_CONFIG,
        "tokenizer.json": b'{"version": "1.0"}',
        "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + extra,
        "README.md": b"---\nlicense: llama2\n---\n# tiny llama\n",
    }
