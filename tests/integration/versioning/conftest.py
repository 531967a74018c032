"""Fixtures of the versioning tests: generated datasets, real DVC/git backends, a local S3.

DVC, git and the files are real; S3 is moto's server (the real boto3/s3fs/DVC clients talk to
it over HTTP). Generated datasets are shared per module: generating 1,000 files is cheap, but
versioning them is not, so each module versions a dataset once and asserts much about it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.adapters.dvc import DvcBackend, DvcOptions
from llmops_versioning.adapters.storage import S3Options

from integration.versioning.helpers import Changes, copy_dataset, generate_dataset, mutate
from support.s3_server import S3Server


@dataclass(frozen=True)
class Datasets:
    """Version 1 of a dataset, version 1.1 (``changes`` applied to a copy) and the expectations."""

    v1: Path
    v1_1: Path
    changes: Changes
    empty: Path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Datasets:
    root = tmp_path_factory.mktemp("datasets")
    generate_dataset(root / "v1", 1000)
    copy_dataset(root / "v1", root / "v1.1")
    changes = mutate(root / "v1.1")
    (root / "empty").mkdir()
    return Datasets(root / "v1", root / "v1.1", changes, root / "empty")


def dvc_backend(
    root: Path, *, remote_url: str | None = None, s3: S3Options | None = None
) -> DvcBackend:
    """A DVC backend with everything (repos, cache, remote) under ``root``."""
    return DvcBackend(
        DvcOptions(
            repos_dir=root / "repos",
            remote_url=remote_url or str(root / "remote"),
            s3=s3 or S3Options(),
            command_timeout_s=120,
        )
    )


def builtin_backend(root: Path, *, s3: S3Options | None = None) -> BuiltinBackend:
    return BuiltinBackend(root / "builtin", s3=s3)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="session")
def s3_options(s3_server: S3Server) -> S3Options:
    return S3Options(
        endpoint_url=s3_server.endpoint_url,
        access_key_id=SecretStr(s3_server.access_key_id),
        secret_access_key=SecretStr(s3_server.secret_access_key),
        region=s3_server.region,
    )
