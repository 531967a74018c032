"""Fixtures of the registry tests: a fresh Hub test double per test, settings on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops_registry.config import RegistrySettings

from integration.registry.helpers import RecordingSink, registry_settings
from support.hf_hub_server import HubServer


@pytest.fixture
def hub() -> Iterator[HubServer]:
    """A fresh Hub double per test (no state shared between tests)."""
    with HubServer() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, hub: HubServer) -> RegistrySettings:
    """Worker settings on ``hub`` with a private cache and store, tiny retry waits."""
    return registry_settings(tmp_path, hub.url)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
