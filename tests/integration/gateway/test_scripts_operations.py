"""The operator scripts when things around them go wrong (both databases where one is used).

* an operational error (database or Redis unreachable, no database) exits 3 with one line on
  stderr, never a traceback and never the 1 of "violations found"; bad settings stay 2;
* without ``DATABASE_URL`` the command says which SQLite file it uses, and refuses a missing one
  instead of creating it;
* without ``REDIS_URL`` the command publishes to the Redis a running ``llmops up`` wrote down;
* two runs queueing the same move at the same moment: the loser retries once and finds it
  already requested; a second conflict exits 3 with nothing changed;
* ``rollback integrations --remove-kserve`` follows the moves and reports them like ``migrate``.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from llmops_gateway.db.models import OUTBOX, ServingDeployment
from llmops_gateway.moves import requests as move_requests
from llmops_gateway.scripts.cli import app
from llmops_shared.events import IntegrationConfigChanged, Stream
from llmops_shared.specs.examples import SEED_DEPLOYMENT_SPEC

from integration.gateway.harness import Gateway, auth, serving_request
from support import scripts
from support.scripts import logs_on_stderr  # noqa: F401 - an autouse fixture
from support.streams import read_events, wait_until

pytestmark = pytest.mark.integration

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

COMMANDS = [
    ["validate", "training-jobs"],
    ["validate", "serving-endpoints", "--json"],
    ["migrate", "experiments-to-mlflow", "--no-wait"],
    ["migrate", "serving-to-kserve", "--no-wait"],
    ["rollback", "integrations", "--environment", "dev", "--yes"],
]


def run(args: list[str], env: dict[str, str | None]) -> Result:
    """A command in this thread (no gateway or worker runs beside it)."""
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def one_error_line(result: Result, code: int) -> str:
    """The command exited ``code`` with exactly one ``error: ...`` line on stderr, no
    traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def namespace() -> str:
    return f"test.{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: no ``.env``, no ``.llmops``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def local_env(**extra: str | None) -> dict[str, str | None]:
    """An operator's shell on the local stack: no DATABASE_URL, REDIS_URL nor data dirs."""
    return {
        "DATABASE_URL": None,
        "REDIS_URL": None,
        "DATA_DIR": None,
        "LLMOPS_DATA_DIR": None,
        "ENVIRONMENT": "dev",
        "COLUMNS": "200",
        **extra,
    }


# 1. exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_an_unreachable_database_exits_3_with_one_line(args: list[str], cwd: Path) -> None:
    result = run(args, {**local_env(), "DATABASE_URL": UNREACHABLE_DB})
    line = one_error_line(result, 3)
    assert line.startswith(f"error: database {UNREACHABLE_DB}: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ENVIRONMENT", "qa", "error: invalid configuration: ENVIRONMENT: Input should be"),
        ("DATABASE_URL", "nosuchdb://x/y", "error: invalid configuration: DATABASE_URL: "),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    variable: str, value: str, message: str, cwd: Path
) -> None:
    result = run(["validate", "training-jobs"], {**local_env(), variable: value})
    assert one_error_line(result, 2).startswith(message)


def test_redis_unreachable_when_publishing_exits_3(gateway_db_url: str, namespace: str) -> None:
    """The change is committed (its event waits in the outbox for the gateway's relay); the
    command says so, and exits 3, not 0."""
    env = scripts.script_env(gateway_db_url, UNREACHABLE_REDIS, namespace)
    result = run(["rollback", "integrations", "--environment", "dev",
                  "--area", "data_versioning", "--yes"], dict(env))  # fmt: skip
    line = one_error_line(result, 3)
    assert line.startswith(f"error: cannot publish to Redis at {UNREACHABLE_REDIS} (REDIS_URL): ")
    assert "wait in the outbox" in line
    engine = sa.create_engine(gateway_db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar_one() == 1
    finally:
        engine.dispose()


# 2. DATABASE_URL unset ----------------------------------------------------------------------


def test_without_database_url_a_missing_sqlite_file_is_refused(cwd: Path) -> None:
    result = run(["validate", "training-jobs"], local_env())
    path = cwd / ".llmops" / "gateway.db"
    assert one_error_line(result, 3) == f"error: no gateway database at {path}; set DATABASE_URL"
    assert not (cwd / ".llmops").exists()  # nothing was created


@pytest.mark.parametrize("data_dir", ["default", "LLMOPS_DATA_DIR", "DATA_DIR"])
def test_without_database_url_the_sqlite_file_used_is_named(cwd: Path, data_dir: str) -> None:
    directory = cwd / ".llmops" if data_dir == "default" else cwd / "stack"
    path = directory / "gateway.db"
    created = run(
        ["validate", "training-jobs"], {**local_env(), "DATABASE_URL": f"sqlite:///{path}"}
    )
    assert created.exit_code == 0, created.stderr
    extra = {} if data_dir == "default" else {data_dir: str(directory)}
    result = run(["validate", "training-jobs"], local_env(**extra))
    assert result.exit_code == 0, result.stderr
    assert f"DATABASE_URL is not set: using the SQLite file {path}" in result.stderr
    assert "0 training jobs checked" in result.stdout


# 3. the local stack's Redis -----------------------------------------------------------------


async def test_without_redis_url_the_local_stacks_redis_is_used(
    gateway_db_url: str, redis_url: str, namespace: str, cwd: Path, redis: Any
) -> None:
    stack = cwd / "stack"
    stack.mkdir()
    (stack / "redis-url").write_text(redis_url + "\n")
    env = {
        **scripts.script_env(gateway_db_url, redis_url, namespace, COLUMNS="300"),
        "REDIS_URL": None,
        "LLMOPS_DATA_DIR": str(stack),
    }
    args = ["rollback", "integrations", "--environment", "dev", "--area", "data_versioning"]
    result = await asyncio.to_thread(run, [*args, "--yes"], env)
    assert result.exit_code == 0, result.stderr
    assert f"REDIS_URL is not set: publishing to {redis_url}" in result.stderr
    assert "published 1 outbox event(s)" in result.stderr
    events = await read_events(redis, f"{namespace}{Stream.CONFIG}")
    assert [e.payload_as(IntegrationConfigChanged).area.value for e in events] == [
        "data_versioning"
    ]

    # no REDIS_URL and no `llmops up`: the events wait for the gateway's relay
    (stack / "redis-url").unlink()
    again = await asyncio.to_thread(run, [*args[:4], "--area", "model_registry", "--yes"], env)
    assert again.exit_code == 0, again.stderr
    assert "no `llmops up` wrote one" in again.stderr
    assert "published 0 outbox event(s)" in again.stderr


# 4. two runs queueing the same moves at the same moment -------------------------------------


def blue_green(model_id: str, route: str) -> dict[str, Any]:
    spec = {**copy.deepcopy(SEED_DEPLOYMENT_SPEC), "rollout": {"strategy": "blue-green"}}
    return serving_request(model_id, route=route, deploymentSpec=spec)


async def endpoints_on(gateway: Gateway, backend: str, *routes: str) -> list[str]:
    """Endpoints created through the API, then shown by the database as the serving worker
    reported them: on ``backend`` (``kserve`` or ``deployment``)."""
    model = await gateway.register_trained_model()
    ids = []
    for route in routes:
        response = await gateway.create_endpoint(blue_green(model["id"], route))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    kind = {"kserve": {"kind": "InferenceService"}, "deployment": {"kind": "List", "items": []}}
    with gateway.state.sessions.begin() as session:
        for row in session.scalars(sa.select(ServingDeployment)):
            row.backend, row.manifest = backend, dict(kind[backend])
    return ids


@pytest.fixture
def racing(
    monkeypatch: pytest.MonkeyPatch, gateway_db_url: str
) -> Iterator[Callable[[bool], None]]:
    """``racing(always)``: another run queues the same request at the moment this one does:
    it commits the first request this run adds just before it (whose insert then breaks the
    unique event id); with ``always``, every insert conflicts."""
    engine = sa.create_engine(gateway_db_url)
    real = move_requests.add_to_outbox

    def race(always: bool) -> None:
        raced: list[str] = []

        def add(db: Any, table: sa.Table, envelope: Any) -> None:
            if always:
                raise IntegrityError("INSERT INTO outbox", {}, Exception("duplicate event id"))
            if not raced:
                raced.append(envelope.id)
                with engine.begin() as other:
                    real(other, table, envelope)
            real(db, table, envelope)

        monkeypatch.setattr(move_requests, "add_to_outbox", add)

    yield race
    engine.dispose()


def outbox_ids(gateway: Gateway) -> list[str]:
    with gateway.state.engine.connect() as conn:
        return list(conn.scalars(sa.select(OUTBOX.c.event_id)))


async def test_migrate_serving_retries_once_when_another_run_queued_the_same_request(
    gateway: Gateway, gateway_db_url: str, redis_url: str, racing: Callable[[bool], None]
) -> None:
    await scripts.set_flag(gateway.client, "serving_framework", True, headers=auth())
    [endpoint] = await endpoints_on(gateway, "deployment", "/chat")
    env = scripts.script_env(gateway_db_url, redis_url, gateway.namespace, COLUMNS="200")
    before = set(outbox_ids(gateway))
    racing(False)
    result = await scripts.run_script(["migrate", "serving-to-kserve", "--no-wait", "--json"], env)
    document = scripts.json_document(result)
    assert (document["queued"], document["already_requested"]) == ([], [endpoint])
    assert len(set(outbox_ids(gateway)) - before) == 1  # one request, the other run's

    racing(True)
    # the first request was answered by nobody: still in the outbox, so "already requested";
    # to conflict again the plan needs a new request id: the endpoint's seq moves on
    with gateway.state.sessions.begin() as session:
        row = session.get(ServingDeployment, endpoint)
        assert row is not None
        row.seq += 1
    failed = await scripts.run_script(["migrate", "serving-to-kserve", "--no-wait"], env)
    line = one_error_line(failed, 3)
    assert "another run queued the same requests at the same moment (twice)" in line
    assert "nothing was queued" in line


async def test_rollback_retries_once_then_stops_before_changing_a_flag(
    gateway: Gateway, gateway_db_url: str, redis_url: str, racing: Callable[[bool], None]
) -> None:
    first, second = await endpoints_on(gateway, "kserve", "/a", "/b")
    env = scripts.script_env(gateway_db_url, redis_url, gateway.namespace, COLUMNS="200")
    args = ["rollback", "integrations", "--environment", "dev", "--remove-kserve", "--yes"]

    racing(True)
    failed = await scripts.run_script([*args, "--no-wait"], env)
    line = one_error_line(failed, 3)
    assert "nothing was changed (no move queued, no flag turned off)" in line
    assert gateway.count("integration_configs") == 0

    racing(False)
    document = scripts.json_document(await scripts.run_script([*args, "--no-wait", "--json"], env))
    applied = document["applied"]
    assert (applied["queued"], applied["already_requested"]) == ([second], [first])
    assert all(flag["enabled"] is False for flag in applied["flags"])


# 5. rollback --remove-kserve follows the moves ----------------------------------------------


async def test_rollback_follows_the_moves_and_reports_those_left(
    gateway: Gateway, gateway_db_url: str, redis_url: str
) -> None:
    moved, left = await endpoints_on(gateway, "kserve", "/moved", "/left")
    env = scripts.script_env(gateway_db_url, redis_url, gateway.namespace, COLUMNS="200")
    args = ["rollback", "integrations", "--environment", "dev", "--remove-kserve", "--yes"]
    command = asyncio.create_task(scripts.run_script([*args, "--timeout", "3", "--json"], env))

    async def queued() -> bool:
        return gateway.count("integration_configs") > 0

    await wait_until(queued, timeout_s=10)
    # what the status consumer does with the serving worker's report of the first move
    with gateway.state.sessions.begin() as session:
        row = session.get(ServingDeployment, moved)
        assert row is not None
        row.backend, row.manifest = "deployment", {"kind": "List", "items": []}
        row.status = "Ready"  # a move counts once the new format is observed Ready
    result = await command
    document = scripts.json_document(result, 1)
    outcomes = {r["endpoint_id"]: r["outcome"] for r in document["results"]}
    assert outcomes == {moved: "migrated", left: "timed_out"}
    assert (document["migrated"], document["timed_out"]) == (1, 1)
    assert f"{left}: timed_out: no answer from the serving worker within --timeout" in (
        result.stderr
    )

    # everything answered: exit 0 (a second rollback finds nothing more to do but the one left)
    with gateway.state.sessions.begin() as session:
        row = session.get(ServingDeployment, left)
        assert row is not None
        row.backend, row.manifest = "deployment", {"kind": "List", "items": []}
        row.status = "Ready"  # a move counts once the new format is observed Ready
    again = await scripts.run_script(args, env)
    assert again.exit_code == 0, again.stderr
    assert "nothing to roll back in dev" in again.stderr
