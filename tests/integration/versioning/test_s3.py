"""S3 everywhere, against moto's server: data on s3://, the DVC remote on s3://, restores to
s3:// and to a local directory. Endpoint and dummy credentials come from the settings' options.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmops_shared.events.payloads.datasets import VersionFacts
from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.adapters.storage import S3Options
from llmops_versioning.handlers import handle_datasets_event
from llmops_versioning.ports import VersioningBackend, VersioningPorts

from integration.versioning.conftest import builtin_backend, dvc_backend
from integration.versioning.helpers import (
    as_event,
    generate_dataset,
    manifest_of,
    new_id,
    only_status,
    read_tree,
    restore_envelope,
    version_envelope,
    version_facts,
)
from support.s3_server import S3Server

pytestmark = pytest.mark.integration

FILES = 100


@pytest.fixture(scope="module")
def s3_dataset(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> tuple[str, Path]:
    """A dataset uploaded to s3://<bucket>/datasets/chat; its URI and a local copy."""
    local = tmp_path_factory.mktemp("s3-dataset") / "chat"
    generate_dataset(local, FILES)
    bucket = f"src-{new_id()[:8]}"
    s3_server.create_bucket(bucket)
    client = s3_server.client()
    for path in sorted(local.rglob("*")):
        if path.is_file():
            key = f"datasets/chat/{path.relative_to(local).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/datasets/chat", local


@pytest.fixture(params=["dvc", "builtin"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server, s3_options: S3Options
) -> VersioningBackend:
    if request.param == "builtin":
        return builtin_backend(tmp_path, s3=s3_options)
    bucket = f"remote-{new_id()[:8]}"
    s3_server.create_bucket(bucket)
    return dvc_backend(tmp_path, remote_url=f"s3://{bucket}/dvc", s3=s3_options)


async def test_version_and_restore_through_s3(
    backend: VersioningBackend,
    s3_dataset: tuple[str, Path],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    uri, local = s3_dataset
    ports = VersioningPorts(backend)
    dataset_id = new_id()

    status = only_status(
        await handle_datasets_event(as_event(version_envelope(dataset_id, "v1", uri)), ports)
    )
    assert status.phase == "Succeeded", status.reason
    facts = VersionFacts.model_validate(version_facts(status))
    assert [tuple(f) for f in facts.files] == manifest_of(local)

    if isinstance(backend, DvcBackend):
        assert facts.remote_uri == backend.remote_url
        bucket, prefix = backend.remote_url[len("s3://") :].split("/", 1)
        pushed = s3_server.keys(bucket, prefix)
        assert len(pushed) == FILES + 1  # every object and the '.dir' manifest
        # the cache is lost: a restore must fetch everything back from the S3 remote
        shutil.rmtree(backend.cache_dir)
        assert "secret_access_key" in (backend.repo(dataset_id) / ".dvc/config.local").read_text()
        assert "secret" not in (backend.repo(dataset_id) / ".dvc/config").read_text()

    # restore to S3
    target_bucket = f"restore-{new_id()[:8]}"
    s3_server.create_bucket(target_bucket)
    target = f"s3://{target_bucket}/out/v1"
    restore = restore_envelope(dataset_id, status.entity_id, "v1", target)
    restored = only_status(await handle_datasets_event(as_event(restore), ports))
    assert restored.phase == "Succeeded", restored.reason
    client = s3_server.client()
    got = {
        key[len("out/v1/") :]: client.get_object(Bucket=target_bucket, Key=key)["Body"].read()
        for key in s3_server.keys(target_bucket, "out/v1/")
    }
    assert got == read_tree(local)

    # restore to a local directory, and a second S3 restore onto the now non-empty prefix fails
    local_target = tmp_path / "restored"
    again = restore_envelope(dataset_id, status.entity_id, "v1", str(local_target))
    assert only_status(await handle_datasets_event(as_event(again), ports)).phase == "Succeeded"
    assert read_tree(local_target) == read_tree(local)
    refused = only_status(
        await handle_datasets_event(
            as_event(restore_envelope(dataset_id, status.entity_id, "v1", target)), ports
        )
    )
    assert refused.phase == "Failed"
    assert refused.reason is not None
    assert "is not empty" in refused.reason


async def test_missing_s3_prefix_fails_clearly(
    s3_server: S3Server, s3_options: S3Options, tmp_path: Path
) -> None:
    bucket = f"empty-{new_id()[:8]}"
    s3_server.create_bucket(bucket)
    ports = VersioningPorts(builtin_backend(tmp_path, s3=s3_options))
    uri = f"s3://{bucket}/nothing/here"
    status = only_status(
        await handle_datasets_event(as_event(version_envelope(new_id(), "v1", uri)), ports)
    )
    assert (status.phase, status.reason) == ("Failed", f"storage_uri {uri} does not exist")
