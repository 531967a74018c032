"""Fixtures of the github-sync tests: a fresh GitHub test double with one repository."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration.github_sync.helpers import OWNER, REPO
from support.github_server import GitHubServer


@pytest.fixture
def gh() -> Iterator[GitHubServer]:
    with GitHubServer() as server:
        server.create_repo(OWNER, REPO, files={"README.md": b"# values\n"})
        yield server
