"""The wiring of the github-sync worker: settings -> backends -> handler and API -> worker host.

The only module that builds clients, and it does so when called, never at import: importing the
package opens no connection and imports neither github nor mlflow.

The service's own API (the endpoints of the MLflow GitHub sync service it replaces, event-driven
now) is a FastAPI app served on the health port behind ``/healthz``, ``/readyz`` and ``/metrics``
(``run_worker(http=...)``):

* ``POST /poll``: reconcile now: every model version in MLflow, every file right, ONE commit
  (it writes to Git, so it needs ``Authorization: Bearer <one of API_KEYS>``: 401 otherwise);
* ``GET /connections``: MLflow and Git reachability and latency, repository, branch, backend;
* ``GET /health``: a summary, as the replaced service's ``/health`` gave (backend, repository,
  last sync, last poll);
* ``/docs``: the OpenAPI UI.

Readiness is Redis only: a GitHub or MLflow outage pauses the consumer (the events wait), it must
not take the worker out of service; ``/connections`` says what is reachable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import JsonValue
from starlette.types import ASGIApp

from llmops_github_sync.config import GithubSyncSettings
from llmops_github_sync.handlers import (
    MlflowNotConfigured,
    ReconcileReport,
    SyncPorts,
    handle_models_event,
    reconcile,
)
from llmops_github_sync.ports import (
    DependencyUnavailableError,
    ModelRegistry,
    SyncRejected,
    ValuesRepository,
)
from llmops_github_sync.values import TemplateError
from llmops_github_sync.values_facts import RenderOptions
from llmops_shared.config import matching_key
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.logging import get_logger
from llmops_shared.streams import Handler
from llmops_shared.worker import Subscription, WorkerContext, run_worker, service_main


def build_repository(settings: GithubSyncSettings) -> ValuesRepository:
    """The ``github`` or ``git`` backend the settings choose."""
    if settings.backend == "github":
        # imported here: importing the package must not import github
        from llmops_github_sync.adapters.github import GithubRepository, app_auth, token_auth

        assert settings.github_repo_owner  # validated
        assert settings.github_repo_name
        if settings.app_auth_configured:
            assert settings.github_app_id
            assert settings.github_app_installation_id is not None
            auth = app_auth(
                settings.github_app_id,
                settings.app_private_key(),
                settings.github_app_installation_id,
            )
            kind = "app"
        else:
            assert settings.github_token is not None
            auth, kind = token_auth(settings.github_token), "token"
        return GithubRepository(
            base_url=settings.github_base_url,
            auth=auth,
            owner=settings.github_repo_owner,
            repo=settings.github_repo_name,
            branch=settings.github_branch,
            values_path=settings.github_values_path,
            mode=settings.sync_mode,
            timeout_s=settings.github_timeout_s,
            seconds_between_writes=settings.github_seconds_between_writes,
            max_rate_limit_wait_s=settings.github_max_rate_limit_wait_s,
            conflict_retries=settings.github_conflict_retries,
            author=(settings.git_author_name, settings.git_author_email),
            auth_kind=kind,
        )
    from llmops_github_sync.adapters.git import GitRepository

    return GitRepository(
        remote_url=settings.git_remote_url,
        branch=settings.github_branch or settings.git_branch,
        work_dir=settings.work_dir,
        values_path=settings.github_values_path,
        author_name=settings.git_author_name,
        author_email=settings.git_author_email,
        push_retries=settings.git_push_retries,
        timeout_s=settings.git_timeout_s,
    )


def build_registry(settings: GithubSyncSettings) -> ModelRegistry | None:
    """MLflow's registry, when ``MLFLOW_TRACKING_URI`` is set."""
    if not settings.mlflow_tracking_uri:
        return None
    from llmops_github_sync.adapters.mlflow import MlflowRegistry

    return MlflowRegistry(settings.mlflow_tracking_uri, page_size=settings.mlflow_page_size)


def build_ports(
    settings: GithubSyncSettings,
    repository: ValuesRepository | None = None,
    registry: ModelRegistry | None = None,
) -> SyncPorts:
    return SyncPorts(
        repository=repository or build_repository(settings),
        registry=registry if registry is not None else build_registry(settings),
        template_path=settings.values_template_path,
        options=RenderOptions(
            max_model_len=settings.vllm_max_model_len,
            gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
            trust_remote_code=settings.vllm_trust_remote_code,
            served_model_name=settings.vllm_served_model_name,
        ),
        values_path=settings.github_values_path,
    )


class Activity:
    """What ``GET /health`` reports: the last sync and the last poll (in memory)."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self.synced = 0
        self.failed = 0
        self.last_sync: dict[str, JsonValue] | None = None
        self.last_poll: dict[str, JsonValue] | None = None
        self.last_error: str | None = None

    def handler(self, inner: Handler) -> Handler:
        async def handle(event: Event) -> list[Envelope]:
            try:
                out = list(await inner(event) or [])
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise
            for envelope in out:
                data = envelope.data
                self.last_sync = {
                    "at": datetime.now(UTC).isoformat(),
                    "model_version": data.get("entity_id"),
                    "phase": data.get("phase"),
                    "reason": data.get("reason"),
                }
                if data.get("phase") == "Failed":
                    self.failed += 1
                else:
                    self.synced += 1
            return out

        return handle


async def _timed(check: Callable[[], Awaitable[None]], timeout_s: float) -> dict[str, JsonValue]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        return {"ok": False, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


Credentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="One of the API_KEYS.")),
]


def build_api(settings: GithubSyncSettings, ports: SyncPorts, activity: Activity) -> FastAPI:
    """The service's own API (served behind /healthz, /readyz, /metrics)."""
    api = FastAPI(
        title="llmops github-sync",
        version="1",
        description="MLflow model versions -> Helm values files ({run_id}.yaml) in Git.",
    )
    poll_lock = asyncio.Lock()

    def require_key(credentials: Credentials) -> None:
        """A state-changing call needs a credential, as on the gateway (its bootstrap keys:
        the worker has no key store of its own)."""
        if not settings.api_keys:
            raise HTTPException(401, "no API_KEYS set on github-sync: POST /poll is refused")
        if credentials is None or matching_key(credentials.credentials, settings.api_keys) is None:
            raise HTTPException(
                401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )

    @api.post(
        "/poll",
        response_model=ReconcileReport,
        summary="Reconcile with MLflow now",
        dependencies=[Depends(require_key)],
        responses={401: {"description": "Missing or invalid API key"}},
    )
    async def poll() -> ReconcileReport:
        async with poll_lock:
            try:
                report = await reconcile(ports)
            except MlflowNotConfigured as exc:
                raise HTTPException(409, str(exc)) from None
            except (TemplateError, SyncRejected) as exc:
                raise HTTPException(422, str(exc)) from None
            except DependencyUnavailableError as exc:
                activity.last_error = str(exc)
                raise HTTPException(503, str(exc)) from None
        activity.last_poll = {"at": datetime.now(UTC).isoformat(), **report.model_dump()}
        return report

    @api.get("/connections", summary="MLflow and Git reachability")
    async def connections() -> dict[str, Any]:
        repository = ports.repository
        git = {**repository.describe(), **await _timed(repository.ping, 15.0)}
        if ports.registry is None:
            mlflow: dict[str, JsonValue] = {"ok": False, "error": "MLFLOW_TRACKING_URI not set"}
        else:
            mlflow = {**ports.registry.describe(), **await _timed(ports.registry.ping, 10.0)}
        return {"mlflow": mlflow, "git": git}

    @api.get("/health", summary="Service summary (as the replaced service's /health)")
    async def health() -> dict[str, Any]:
        return {
            "status": "healthy",
            "service": settings.service_name,
            "mode": "event-driven",
            "stream": Stream.MODELS.value,
            "backend": ports.repository.name,
            "repository": ports.repository.describe(),
            "mlflow_tracking_uri": ports.registry.describe()["tracking_uri"]
            if ports.registry is not None
            else None,
            "started_at": activity.started_at.isoformat(),
            "synced": activity.synced,
            "failed": activity.failed,
            "last_sync": activity.last_sync,
            "last_poll": activity.last_poll,
            "last_error": activity.last_error,
        }

    return api


async def serve(
    settings: GithubSyncSettings,
    *,
    stop: asyncio.Event | None = None,
    repository: ValuesRepository | None = None,
    registry: ModelRegistry | None = None,
) -> None:
    """Run the worker until SIGTERM/SIGINT (or ``stop``). Tests may pass their own backends."""
    ports = build_ports(settings, repository, registry)
    activity = Activity()
    get_logger(__name__).info(
        "github_sync_backend",
        **ports.repository.describe(),
        mlflow=ports.registry.describe() if ports.registry else None,
        template=str(settings.values_template_path or "built-in"),
    )

    async def handler(event: Event) -> list[Envelope]:
        return await handle_models_event(event, ports)

    def subscriptions(_: WorkerContext[GithubSyncSettings]) -> list[Subscription]:
        return [Subscription(Stream.MODELS, activity.handler(handler))]

    def http(_: WorkerContext[GithubSyncSettings]) -> ASGIApp:
        return build_api(settings, ports, activity)

    described = ports.repository.describe()
    await run_worker(
        settings,
        subscriptions,
        stop=stop,
        http=http,
        describe={
            "backend": ports.repository.name,
            "mode": str(described.get("mode", settings.sync_mode)),
            "repository": str(described.get("repository", "")),
            "branch": str(described.get("branch", "")),
        },
    )


def main() -> None:
    """``python -m llmops_github_sync``: read the environment, log JSON, serve."""
    service_main("github-sync", GithubSyncSettings, serve)
