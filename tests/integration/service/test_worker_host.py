"""The worker host (``run_worker``, ``service_main``) on a real Redis: the context a service's
subscription factory gets, background tasks and their supervision, and the shared ``main()``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from llmops_shared import worker
from llmops_shared.config import ServiceSettings
from llmops_shared.events import Envelope, Event, Stream
from llmops_shared.streams import Publisher
from llmops_shared.worker import (
    Background,
    BackgroundTaskEnded,
    Subscription,
    WorkerContext,
    run_worker,
    service_main,
)

from support.streams import FAST_CONSUMER, cancel_event, read_events, status_for, wait_until

pytestmark = pytest.mark.integration

Context = WorkerContext[ServiceSettings]


def settings_for(redis_url: str, namespace: str, *, health_port: int = 0) -> ServiceSettings:
    return ServiceSettings(
        service_name="host-test",
        redis_url=SecretStr(redis_url),
        stream_namespace=namespace,
        consumer=FAST_CONSUMER,
        health_port=health_port,
    )


@pytest.fixture
def namespace(names: object) -> str:
    return f"test.{names.token}:"  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """A subscription factory whose handler reports through ``context.publisher`` mid-event
    (as the registry and versioning handlers do) and emits nothing through the commit."""

    def __init__(self) -> None:
        self.context: Context | None = None
        self.handled: list[str] = []

    def __call__(self, context: Context) -> Sequence[Subscription]:
        self.context = context

        async def handle(event: Event) -> list[Envelope]:
            await context.publisher.publish(status_for(event, reporter="mid-handler"))
            self.handled.append(event.envelope.id)
            return []

        return [Subscription(Stream.TRAINING, handle)]


async def test_the_subscription_factory_gets_a_publisher_on_the_namespace(
    redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    recorder = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings_for(redis_url, namespace), recorder, stop=stop))
    try:
        event = cancel_event()
        await Publisher(redis, namespace=namespace).publish(event)
        status_stream = f"{namespace}{Stream.STATUS}"

        async def reported() -> bool:
            return len(await read_events(redis, status_stream)) == 1

        await wait_until(reported)
        (status,) = await read_events(redis, status_stream)
        assert status.envelope.source == "mid-handler"
        assert status.envelope.correlationid == event.correlationid
        assert recorder.handled == [event.id]
        context = recorder.context
        assert context is not None
        assert not context.stop.is_set()  # this run's stop: the caller's, or a flag switch
        assert context.settings.redis_url is not None
        assert context.settings.redis_url.get_secret_value() == redis_url
        assert await context.redis.ping()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert recorder.context is not None
    assert recorder.context.stop.is_set()  # the caller's stop reached the run's


async def test_a_critical_background_task_that_raises_stops_the_worker_with_its_error(
    redis_url: str, namespace: str
) -> None:
    seen: list[Context] = []

    async def crash(context: Context) -> None:
        seen.append(context)
        await asyncio.sleep(0.2)
        raise ValueError("watcher exploded")

    stop = asyncio.Event()
    with pytest.raises(ValueError, match="watcher exploded"):
        await asyncio.wait_for(
            run_worker(
                settings_for(redis_url, namespace),
                Recorder(),
                stop=stop,
                background=[Background("watcher", crash)],
            ),
            timeout=10,
        )
    assert seen
    assert seen[0].stop.is_set()  # the consumers were told to stop, and have (returned)
    assert not stop.is_set()  # the caller's event is the caller's


async def test_a_critical_background_task_must_not_end_while_the_worker_runs(
    redis_url: str, namespace: str
) -> None:
    async def quits(_: Context) -> None:
        await asyncio.sleep(0.1)

    with pytest.raises(BackgroundTaskEnded, match="watcher"):
        await asyncio.wait_for(
            run_worker(
                settings_for(redis_url, namespace),
                Recorder(),
                background=[Background("watcher", quits)],
            ),
            timeout=10,
        )


async def test_a_non_critical_background_task_may_fail_or_return(
    redis_url: str, redis: aioredis.Redis, namespace: str
) -> None:
    finished: list[str] = []

    async def fails(_: Context) -> None:
        finished.append("fails")
        raise RuntimeError("hub unreachable")

    async def returns(_: Context) -> None:
        finished.append("returns")

    recorder = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            settings_for(redis_url, namespace),
            recorder,
            stop=stop,
            background=[
                Background("probe", fails, critical=False),
                Background("once", returns, critical=False),
            ],
        )
    )
    try:

        async def both_done() -> bool:
            return sorted(finished) == ["fails", "returns"]

        await wait_until(both_done)
        event = cancel_event()  # the worker still consumes after both ended
        await Publisher(redis, namespace=namespace).publish(event)

        async def handled() -> bool:
            return recorder.handled == [event.id]

        await wait_until(handled)
        assert not task.done()
    finally:
        stop.set()
    await asyncio.wait_for(task, timeout=10)  # returns normally: no error propagated


async def test_background_tasks_are_cancelled_on_stop_and_critical_ones_are_live(
    redis_url: str, namespace: str
) -> None:
    started: list[str] = []
    cancelled: list[str] = []

    def forever(name: str) -> Background[ServiceSettings]:
        async def run(_: Context) -> None:  # ignores ``stop`` on purpose
            started.append(name)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return Background(name, run, critical=name == "critical")

    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            settings_for(redis_url, namespace, health_port=port),
            Recorder(),
            stop=stop,
            background=[forever("critical"), forever("optional")],
        )
    )
    try:

        async def both_started() -> bool:
            return sorted(started) == ["critical", "optional"]

        await wait_until(both_started)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy)
    finally:
        stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert sorted(cancelled) == ["critical", "optional"]


async def test_the_services_own_api_is_served_behind_the_health_routes(
    redis_url: str, namespace: str
) -> None:
    seen: list[str] = []

    def api(context: Context) -> FastAPI:
        app = FastAPI()

        @app.post("/poll")
        async def poll() -> dict[str, str]:
            seen.append(context.settings.service_name)
            return {"status": "polled"}

        return app

    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            settings_for(redis_url, namespace, health_port=port), Recorder(), stop=stop, http=api
        )
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up)
            assert (await client.post("/poll")).json() == {"status": "polled"}
            assert (await client.get("/openapi.json")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200  # still the host's
            assert (await client.get("/nope")).status_code == 404
    finally:
        stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert seen == ["host-test"]  # the handler got the context


async def test_a_critical_background_task_is_a_liveness_check(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/healthz`` lists critical background tasks beside the consumer loops (a dead one is
    reported there for the instant before the worker stops), non-critical ones not at all."""
    captured: dict[str, object] = {}
    real_health_app = worker.health_app

    def spy(**kwargs: object) -> object:
        captured.update(kwargs)
        return real_health_app(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "health_app", spy)
    gate = asyncio.Event()

    async def watch(context: Context) -> None:
        await gate.wait()
        raise ValueError("watch failed")

    async def probe(_: Context) -> None:
        await asyncio.sleep(3600)

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            settings_for(redis_url, namespace),
            Recorder(),
            stop=stop,
            background=[Background("watcher", watch), Background("probe", probe, critical=False)],
        )
    )

    async def built() -> bool:
        return "liveness" in captured

    await wait_until(built)
    liveness = captured["liveness"]
    assert isinstance(liveness, dict)
    assert sorted(liveness) == [f"consume:{namespace}{Stream.TRAINING}", "watcher"]
    assert all(alive() for alive in liveness.values())
    gate.set()
    with pytest.raises(ValueError, match="watch failed"):
        await asyncio.wait_for(task, timeout=10)
    assert not liveness["watcher"]()


def test_service_main_refuses_invalid_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    def invalid() -> ServiceSettings:
        return ServiceSettings(health_port=-1)

    async def serve(_: ServiceSettings) -> None:
        raise AssertionError("must not serve")

    with pytest.raises(SystemExit) as exit_info:
        service_main("demo", invalid, serve)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: invalid configuration:\n")
    assert "health_port" in err


def test_service_main_configures_logging_then_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(worker, "configure_logging", lambda **kwargs: calls.append(kwargs))
    settings = ServiceSettings(service_name="demo", log_level="DEBUG", log_json=False)

    async def serve(got: ServiceSettings, *, stop: asyncio.Event | None = None) -> None:
        calls.append(got)

    service_main("demo", lambda: settings, serve)
    assert calls == [{"service": "demo", "level": "DEBUG", "json": False}, settings]
