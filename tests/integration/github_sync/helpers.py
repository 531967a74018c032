"""Events, settings and backends for the github-sync tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from llmops_github_sync.adapters.git import GitRepository
from llmops_github_sync.adapters.github import GithubRepository, token_auth
from llmops_github_sync.config import GithubSyncSettings
from llmops_github_sync.handlers import SyncPorts
from llmops_github_sync.values_facts import RenderOptions
from llmops_shared.events import (
    Envelope,
    Event,
    ModelVersionChanged,
    ModelVersionRegistered,
    ModelVersionStatusUpdated,
    decode_event,
    encode_event,
    new_event,
)

from support.github_server import GitHubServer
from support.streams import FAST_CONSUMER

OWNER, REPO = "acme", "deploy-values"
CREATED = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parents[2] / "unit" / "github_sync" / "golden" / "new_run.yaml"


def registered(
    model: str = "Qwen/Qwen3-0.6B",
    version: str = "1",
    run_id: str | None = "abc123def456",
    *,
    experiment_id: str | None = "1",
    created_at: datetime = CREATED,
    tags: dict[str, str] | None = None,
) -> Envelope:
    payload = ModelVersionRegistered(
        model_name=model,
        version=version,
        run_id=run_id,
        experiment_id=experiment_id,
        source=f"models:/{model}/{version}",
        created_at=created_at,
        tags=tags or {},
    )
    return new_event(payload, source="tracking", correlation_id="corr-gs")


def changed(model: str, version: str, run_id: str, **kw: Any) -> Envelope:
    payload = ModelVersionChanged(
        model_name=model,
        version=version,
        run_id=run_id,
        experiment_id="1",
        source=f"models:/{model}/{version}",
        created_at=kw.pop("created_at", CREATED),
        change="tag_set",
        key="stage",
        value="prod",
        **kw,
    )
    return new_event(payload, source="tracking", correlation_id="corr-gs")


def received(envelope: Envelope) -> Event:
    return decode_event(encode_event(envelope))


def status_of(envelope: Envelope) -> ModelVersionStatusUpdated:
    return received(envelope).payload_as(ModelVersionStatusUpdated)


class Sleeps:
    """A recording ``sleep`` that does not sleep (the rate-limit tests assert the waits)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def github_repo(gh: GitHubServer, **overrides: Any) -> GithubRepository:
    values: dict[str, Any] = {
        "base_url": gh.url,
        "auth": token_auth(SecretStr(gh.token)),
        "owner": OWNER,
        "repo": REPO,
        "seconds_between_writes": 0,
        "max_rate_limit_wait_s": 5,
        "timeout_s": 5,
        **overrides,
    }
    return GithubRepository(**values)


def git_repo(work_dir: Path, remote: str | None = None, **overrides: Any) -> GitRepository:
    return GitRepository(remote_url=remote, branch="main", work_dir=work_dir, **overrides)


def ports(repository: Any, **overrides: Any) -> SyncPorts:
    return SyncPorts(repository=repository, **overrides)


POLL_KEY = "test-poll-key"
"""What POST /poll needs (one of API_KEYS)."""


def settings(tmp_path: Path, **overrides: Any) -> GithubSyncSettings:
    values: dict[str, Any] = {
        "health_port": 0,
        "log_json": False,
        "work_dir": tmp_path / "github-sync",
        "github_seconds_between_writes": 0,
        "api_keys": [SecretStr(POLL_KEY)],
        **overrides,
    }
    return GithubSyncSettings(_env_file=None, **values)  # type: ignore[call-arg]


def worker_settings(
    redis_url: str, namespace: str, tmp_path: Path, **kw: Any
) -> GithubSyncSettings:
    return settings(
        tmp_path,
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER.model_copy(update={"claim_idle_ms": 60_000}),
        **kw,
    )


def new_run_id() -> str:
    return uuid.uuid4().hex


DEFAULT_OPTIONS = RenderOptions()
