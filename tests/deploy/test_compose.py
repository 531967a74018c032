"""deploy/compose: every service is health-checked, secrets are required, Redis is durable and
never evicts, MLflow is set up for webhooks, and each of our services starts on its environment
(the names it reads, values its settings accept)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import yaml

from deploy.helpers import (
    COMPOSE,
    DEPLOY,
    SERVICES,
    compose_variables,
    default_port,
    env_names,
    interpolate,
    secret_env_names,
)

pytestmark = pytest.mark.unit

THIRD_PARTY = {"redis", "postgres", "mlflow", "redis-acl"}
"""Compose services that are not one of ours (redis-acl runs our image, but acl.py)."""

SECRET_WORDS = re.compile(r"PASSWORD|SECRET|API_KEYS|ENCRYPTION_KEY|TOKEN")
OPTIONAL_CREDENTIALS = {"HF_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"}
"""Credentials of optional integrations (gated Hub models, GitHub, S3): empty by default."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # merge keys (<<) resolved
    return parsed


@pytest.fixture(scope="module")
def required(compose: dict[str, Any]) -> set[str]:
    return {name for name, op, _ in compose_variables(compose) if op in (":?", "?")}


@pytest.fixture(scope="module")
def environ(required: set[str]) -> dict[str, str]:
    """An environment with every required variable set, as a filled-in .env would be."""
    return {name: f"{name.lower()}-value" for name in required}


def test_every_service_is_known_and_health_checked(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == set(SERVICES) | THIRD_PARTY
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):
            # only a one-shot job others wait to *complete* may go without one
            assert service["restart"] == "no"
            waiting = [s for s in services.values() if name in (s.get("depends_on") or {})]
            assert waiting
            assert all(
                s["depends_on"][name]["condition"] == "service_completed_successfully"
                for s in waiting
            )
            continue
        assert check["test"][0] == "CMD", name
        assert len(check["test"]) > 1, name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            assert condition["condition"] in {"service_healthy", "service_completed_successfully"}


def test_secrets_are_required_and_listed_in_the_env_example(
    compose: dict[str, Any], required: set[str]
) -> None:
    for name, op, arg in compose_variables(compose):
        if name in OPTIONAL_CREDENTIALS:
            assert (op, arg) == (":-", ""), f"${{{name}}} is optional: ${{{name}:-}}"
        elif SECRET_WORDS.search(name):
            assert op == ":?", f"${{{name}}} is a secret: use ${{{name}:?...}}"
    example = (DEPLOY / "compose" / ".env.example").read_text()
    listed = {
        line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")
    }
    assert listed == required  # every required variable, and nothing else uncommented
    assert all(
        line.endswith("=") for line in example.splitlines() if line and not line.startswith("#")
    ), "the example must not carry values"


def test_compose_refuses_to_start_without_a_secret(
    compose: dict[str, Any], environ: dict[str, str]
) -> None:
    interpolate(compose, environ)  # complete: fine
    missing = {k: v for k, v in environ.items() if k != "API_KEYS"}
    with pytest.raises(LookupError, match="API_KEYS"):
        interpolate(compose, missing)


def options(command: list[str]) -> dict[str, str | None]:
    """``--name value`` pairs and ``--flag`` switches (None) of a command line."""
    found: dict[str, str | None] = {}
    for index, item in enumerate(command):
        if item.startswith("--"):
            following = command[index + 1] if index + 1 < len(command) else None
            found[item] = None if following is None or following.startswith("--") else following
    return found


def test_redis_is_durable_never_evicts_and_uses_the_acl(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    pairs = options(command)
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert pairs["--aclfile"] == "/acl/users.acl"
    conf = (DEPLOY / "redis" / "redis.conf").read_text()
    for line in ("appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction"):
        assert re.search(rf"^{line}$", conf, re.M), line  # the same in the reference config


def test_each_service_connects_to_redis_as_its_own_acl_user(
    compose: dict[str, Any], environ: dict[str, str], acl: Any
) -> None:
    services = interpolate(compose, environ)["services"]
    acl_env = compose["services"]["redis-acl"]["environment"]
    users = [u.name for u in acl.users()]
    assert set(acl_env) == {acl.password_variable(u) for u in users}
    for service in SERVICES:
        url = services[service]["environment"]["REDIS_URL"]
        password = environ[acl.password_variable(service)]
        assert url == f"redis://{service}:{password}@redis:6379/0"


def test_mlflow_runs_lean_with_webhooks_and_a_persistent_key(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    command = mlflow["entrypoint"]
    server = options(command)
    assert command[:2] == ["mlflow", "server"]
    assert server["--workers"] == "1"
    assert "mlflow" in str(server["--allowed-hosts"]).split(",")  # the in-network host name
    assert "--serve-artifacts" in server
    assert server["--artifacts-destination"]
    env = mlflow["environment"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] == "http,https"
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] == "true"
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"].startswith(
        "${MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY:?"
    )
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    tracking = compose["services"]["tracking"]["environment"]
    port = default_port("tracking")
    assert tracking["MLFLOW_WEBHOOK_URL"] == f"http://tracking:{port}/mlflow/webhook"
    assert tracking["MLFLOW_WEBHOOK_SECRET"].startswith("${MLFLOW_WEBHOOK_SECRET:?")


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_starts_on_its_compose_environment(
    compose: dict[str, Any],
    environ: dict[str, str],
    service: str,
    settings_from_env: Callable[[str, Mapping[str, str]], Any],
) -> None:
    spec = compose["services"][service]
    assert spec["build"]["args"]["SERVICE"] == service
    assert spec["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    env = {k: str(v) for k, v in interpolate(spec["environment"], environ).items()}
    unknown = set(env) - env_names(service)
    assert not unknown, f"{service} reads no such setting: {sorted(unknown)}"
    for name in secret_env_names(service) & set(spec["environment"]):
        raw = str(spec["environment"][name])
        assert "${" in raw, f"{service}: {name} is a credential: take it from the .env file"
    settings = settings_from_env(service, env)  # raises when the service would refuse to start
    assert settings.service_name == service
    assert settings.health_host == "0.0.0.0"
    if service == "gateway":
        assert settings.host == "0.0.0.0"
        assert settings.port == default_port("gateway")
        assert settings.database_url is not None
        assert settings.api_keys
    else:
        assert settings.health_port == default_port(service)


def test_the_integration_flags_are_one_setting_for_the_gateway_and_the_workers(
    compose: dict[str, Any],
) -> None:
    flags = {
        "EXPERIMENT_TRACKING_ENABLED": "tracking",
        "SERVING_FRAMEWORK_ENABLED": "serving",
        "WORKFLOW_ORCHESTRATION_ENABLED": "workflow",
        "DATA_VERSIONING_ENABLED": "versioning",
    }
    services = compose["services"]
    for flag, worker in flags.items():
        expression = services[worker]["environment"][flag]
        assert expression == f"${{{flag}:-true}}"  # a default from .env, on unless set
        assert services["gateway"]["environment"][flag] == expression
    assert services["gateway"]["environment"]["MODEL_REGISTRY_ENABLED"] == (
        "${MODEL_REGISTRY_ENABLED:-true}"
    )
