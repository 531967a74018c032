"""Pure logic of the versioning worker: settings, digests, tag messages, DVC errors, throttling."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.adapters.dvc import DvcBackend
from llmops_versioning.adapters.dvc_commands import error_line
from llmops_versioning.adapters.dvc_repo import _ini, normalize_remote, parse_tag_message
from llmops_versioning.adapters.storage import Location, S3Options
from llmops_versioning.app import build_backend
from llmops_versioning.config import VersioningSettings
from llmops_versioning.manifest import dir_digest, one_line
from llmops_versioning.ports import VersioningFailed

pytestmark = pytest.mark.unit


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATA_VERSIONING_ENABLED", "false")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("DVC_REMOTE_URL", "s3://bucket/dvc")
    monkeypatch.setenv("DVC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BUILTIN_STORE_DIR", str(tmp_path / "store"))
    settings = VersioningSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.data_versioning_enabled is False
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert settings.dvc_remote_url == "s3://bucket/dvc"
    assert settings.dvc_cache_dir == tmp_path / "cache"
    assert "very-secret" not in repr(settings)
    backend = build_backend(settings)
    assert isinstance(backend, BuiltinBackend)
    assert backend.name == "builtin"


def test_s3_endpoint_url_wins_and_defaults_build_dvc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("LLMOPS_DATA_DIR", "/srv/llmops")
    settings = VersioningSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.dvc_repos_dir == Path("/srv/llmops/versioning/repos")
    assert settings.dvc_remote_url == "/srv/llmops/versioning/remote"
    assert isinstance(build_backend(settings), DvcBackend)


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_local_data_roots_reach_both_backends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, enabled: str
) -> None:
    monkeypatch.setenv("DATA_VERSIONING_ENABLED", enabled)
    monkeypatch.setenv("LLMOPS_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOCAL_DATA_ROOTS", f"{tmp_path / 'data'},{tmp_path / 'more'}")
    backend = build_backend(VersioningSettings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(backend, BuiltinBackend | DvcBackend)
    assert backend.access.roots == ((tmp_path / "data").resolve(), (tmp_path / "more").resolve())


def test_bad_remote_name_is_refused() -> None:
    with pytest.raises(ValueError, match="DVC_REMOTE_NAME"):
        VersioningSettings(dvc_remote_name="my remote")


def test_digest_is_dvcs_dir_hash() -> None:
    # md5 of "a\n" and "b\n"; the integration tests compare the digest with DVC's own
    files = [
        ("sub/b.txt", "3b5d5c3712955042212316173ccf37be", 2),
        ("a.txt", "60b725f10c9c85c70d97880dfe8191b3", 2),
    ]
    assert dir_digest(files) == dir_digest(list(reversed(files)))
    assert dir_digest(files).endswith(".dir")
    assert dir_digest(files) != dir_digest(files[:1])


def test_tag_message_round_trip() -> None:
    fields = parse_tag_message(
        "llmops dataset version v1\n\ndataset_id: d\nversion_id: 1-2\nparent_version_id: \n"
        "storage_uri: s3://b/p\n"
    )
    assert fields["version_id"] == "1-2"
    assert fields["parent_version_id"] == ""
    assert fields["storage_uri"] == "s3://b/p"


def test_error_line_keeps_dvcs_errors_only() -> None:
    output = (
        "Collecting\nERROR: failed to push data to the cloud - 3 files failed to upload\n\n"
        "Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n"
    )
    assert error_line(output) == "failed to push data to the cloud - 3 files failed to upload"
    assert error_line("fatal: not a git repository\n") == "fatal: not a git repository"
    assert error_line("") == "no output"


def test_config_values_are_quoted() -> None:
    assert _ini("a#b,c") == '"a#b,c"'
    assert _ini('x"y') == "'x\"y'"


def test_remote_urls(tmp_path: Path) -> None:
    assert normalize_remote("s3://b/p") == "s3://b/p"
    assert normalize_remote(f"file://{tmp_path}") == str(tmp_path)
    assert Path(normalize_remote("relative/remote")).is_absolute()


def test_locations() -> None:
    with pytest.raises(VersioningFailed, match="unsupported scheme 'gs'"):
        Location("gs://bucket/x", S3Options())
    with pytest.raises(VersioningFailed, match="names no bucket"):
        Location("s3://", S3Options())
    assert Location("file:///data/x", S3Options()).local == Path("/data/x")
    assert "secret" not in repr(S3Options(endpoint_url="http://x"))


def test_one_line() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 5000)) == 1500
