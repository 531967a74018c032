"""Pinned reads by content address, against a DVC remote made by the real ``dvc`` and the
versioning service's real built-in store; tampering is refused, naming the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops_trainer.errors import Refused
from llmops_trainer.sources import (
    Pin,
    SourceFile,
    check_relpath,
    dir_digest,
    md5_hex,
    read_pinned,
    read_unpinned,
)
from llmops_trainer.vocab import DatasetStore, DatasetType
from llmops_versioning.adapters.builtin import BuiltinBackend
from llmops_versioning.ports import VersionRequest

pytestmark = pytest.mark.unit

FILES = {
    "train.jsonl": b'{"prompt": "a", "response": "b"}\n{"prompt": "c", "response": "d"}\n',
    "more/extra.json": b'[{"prompt": "e", "response": "f"}]',
    "README.md": b"# not records\n",
}


def write_files(root: Path) -> Path:
    for relpath, data in FILES.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    return root


def read_all(pin: Pin, version: str = "v1") -> list[SourceFile]:
    _, files = read_pinned(pin, version=version, dataset_type=DatasetType.SFT_PAIR)
    return list(files)


def object_path(remote: Path, md5: str, *, dvc: bool) -> Path:
    prefix = remote / "files" / "md5" if dvc else remote / "objects"
    return prefix / md5[:2] / md5[2:]


@dataclass(frozen=True)
class Remote:
    path: Path
    digest: str


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def dvc_remote(tmp_path_factory: pytest.TempPathFactory) -> Remote:
    """A dataset versioned with the real dvc (git repo, local remote, push): DVC 3's layout."""
    root = tmp_path_factory.mktemp("dvc")
    repo, remote = root / "repo", root / "remote"
    write_files(repo / "data")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    dvc(repo, "add", "data", "-q")
    dvc(repo, "push", "-q")
    digest = (repo / "data.dvc").read_text().split("md5: ")[1].split()[0]
    return Remote(remote, digest)


@pytest.fixture
def dvc_copy(dvc_remote: Remote, tmp_path: Path) -> Remote:
    """A copy of the DVC remote a test may tamper with."""
    shutil.copytree(dvc_remote.path, tmp_path / "remote")
    return Remote(tmp_path / "remote", dvc_remote.digest)


@pytest.fixture
def builtin_store(tmp_path: Path) -> tuple[Path, str, str]:
    """A version recorded by the versioning service's built-in backend: (store, id, digest)."""
    source = write_files(tmp_path / "source")
    backend = BuiltinBackend(tmp_path / "store", local_data_roots=[tmp_path])
    dataset_id = f"ds-{uuid.uuid4().hex[:8]}"
    request = VersionRequest(dataset_id, uuid.uuid4().hex, "v1", "sft_pair", str(source))
    facts = backend.create_version_sync(request, lambda _: None)
    shutil.rmtree(source)  # the pinned read must not need the source any more
    return tmp_path / "store", dataset_id, facts.digest


def test_dvc_layout_is_what_the_reader_expects(dvc_remote: Remote) -> None:
    manifest = object_path(dvc_remote.path, dvc_remote.digest, dvc=True)
    assert manifest.name.endswith(".dir")
    assert md5_hex(manifest.read_bytes()) + ".dir" == dvc_remote.digest
    tree = json.loads(manifest.read_bytes())
    assert dir_digest([(e["relpath"], e["md5"]) for e in tree]) == dvc_remote.digest


def test_dvc_pinned_read_returns_the_record_files_checked(dvc_remote: Remote) -> None:
    pin = Pin(DatasetStore.DVC, str(dvc_remote.path), dvc_remote.digest)
    source, files = read_pinned(pin, version="v1", dataset_type=DatasetType.SFT_PAIR)
    read = {f.relpath: f.data for f in files}
    assert read == {k: v for k, v in FILES.items() if k != "README.md"}
    assert source.pinned
    assert source.digest == dvc_remote.digest
    assert source.source_type == "dvc"
    assert source.source["manifest"].endswith(f"{dvc_remote.digest[:2]}/{dvc_remote.digest[2:]}")


def test_dvc_tampered_object_is_refused_naming_the_file(dvc_copy: Remote) -> None:
    md5 = md5_hex(FILES["train.jsonl"])
    object_path(dvc_copy.path, md5, dvc=True).write_bytes(b'{"prompt": "x", "response": "y"}\n')
    pin = Pin(DatasetStore.DVC, str(dvc_copy.path), dvc_copy.digest)
    with pytest.raises(
        Refused, match=rf"^train\.jsonl: content does not match its recorded md5 {md5}"
    ):
        read_all(pin)


def test_dvc_tampered_manifest_is_refused(dvc_copy: Remote) -> None:
    manifest = object_path(dvc_copy.path, dvc_copy.digest, dvc=True)
    tree = json.loads(manifest.read_bytes())
    tree[0]["md5"] = "0" * 32
    manifest.write_text(json.dumps(tree, sort_keys=True))
    pin = Pin(DatasetStore.DVC, str(dvc_copy.path), dvc_copy.digest)
    with pytest.raises(Refused, match="does not match its digest"):
        read_all(pin)


def test_dvc_unknown_digest_and_missing_object_are_refused(dvc_copy: Remote) -> None:
    with pytest.raises(Refused, match=r"object .* not found"):
        read_all(Pin(DatasetStore.DVC, str(dvc_copy.path), "f" * 32 + ".dir"))
    with pytest.raises(Refused, match=r"is not an md5 followed by '\.dir'"):
        read_all(Pin(DatasetStore.DVC, str(dvc_copy.path), "not-a-digest"))
    object_path(dvc_copy.path, md5_hex(FILES["train.jsonl"]), dvc=True).unlink()
    with pytest.raises(Refused, match=r"^train\.jsonl: object .* not found"):
        read_all(Pin(DatasetStore.DVC, str(dvc_copy.path), dvc_copy.digest))


def test_dvc_manifest_with_an_unsafe_relpath_is_refused(tmp_path: Path) -> None:
    data = b'{"prompt": "a", "response": "b"}\n'
    tree = [{"md5": md5_hex(data), "relpath": "../escape.jsonl"}]
    manifest = json.dumps(tree, sort_keys=True).encode()
    digest = md5_hex(manifest) + ".dir"
    object_path(tmp_path, digest, dvc=True).parent.mkdir(parents=True)
    object_path(tmp_path, digest, dvc=True).write_bytes(manifest)
    with pytest.raises(Refused, match=r"unsafe relpath '\.\./escape\.jsonl'"):
        read_all(Pin(DatasetStore.DVC, str(tmp_path), digest))


@pytest.mark.parametrize(
    "relpath", ["/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a//b", "./a", ""]
)
def test_unsafe_relpaths(relpath: str) -> None:
    with pytest.raises(Refused):
        check_relpath(relpath, where="m")


def test_builtin_pinned_read_returns_the_recorded_content(
    builtin_store: tuple[Path, str, str],
) -> None:
    store, dataset_id, digest = builtin_store
    pin = Pin(DatasetStore.BUILTIN, str(store), digest, dataset_id=dataset_id)
    source, files = read_pinned(pin, version="v1", dataset_type=DatasetType.SFT_PAIR)
    assert {f.relpath: f.data for f in files} == {
        k: v for k, v in FILES.items() if k != "README.md"
    }
    assert source.source["manifest"] == f"{store}/versions/{dataset_id}/v1.json"


def test_builtin_and_dvc_agree_on_the_digest(
    builtin_store: tuple[Path, str, str], dvc_remote: Remote
) -> None:
    assert builtin_store[2] == dvc_remote.digest


def test_builtin_wrong_digest_or_version_is_refused(builtin_store: tuple[Path, str, str]) -> None:
    store, dataset_id, digest = builtin_store
    wrong = Pin(DatasetStore.BUILTIN, str(store), "0" * 32 + ".dir", dataset_id=dataset_id)
    with pytest.raises(Refused, match=f"does not match --dataset-digest 0{{32}}.dir .*{digest}"):
        read_all(wrong)
    pin = Pin(DatasetStore.BUILTIN, str(store), digest, dataset_id=dataset_id)
    with pytest.raises(Refused, match=r"version manifest: object .*v2\.json not found"):
        read_all(pin, version="v2")
    with pytest.raises(Refused, match="needs --dataset-id"):
        read_all(Pin(DatasetStore.BUILTIN, str(store), digest))


@pytest.mark.parametrize(
    ("dataset_id", "version"), [("../../etc", "v1"), ("ds", "../v1"), ("ds", "..")]
)
def test_builtin_names_that_would_leave_the_store_are_refused(
    builtin_store: tuple[Path, str, str], dataset_id: str, version: str
) -> None:
    store, _, digest = builtin_store
    pin = Pin(DatasetStore.BUILTIN, str(store), digest, dataset_id=dataset_id)
    with pytest.raises(Refused, match="cannot name a manifest in the built-in store"):
        read_all(pin, version=version)


def test_builtin_tampered_object_is_refused(builtin_store: tuple[Path, str, str]) -> None:
    store, dataset_id, digest = builtin_store
    md5 = md5_hex(FILES["more/extra.json"])
    object_path(store, md5, dvc=False).write_bytes(b"[]")
    pin = Pin(DatasetStore.BUILTIN, str(store), digest, dataset_id=dataset_id)
    with pytest.raises(Refused, match=r"^more/extra\.json: content does not match"):
        read_all(pin)


def test_unpinned_read_hashes_what_it_read(tmp_path: Path, dvc_remote: Remote) -> None:
    root = write_files(tmp_path / "data")
    source, files = read_unpinned(str(root), dataset_type=DatasetType.SFT_PAIR)
    assert source.digest is None
    assert sorted(f.relpath for f in files) == ["more/extra.json", "train.jsonl"]
    # the record files' manifest: here the same as DVC's, minus the ignored README
    expected = dir_digest([(k, md5_hex(v)) for k, v in FILES.items() if k != "README.md"])
    assert source.digest == expected
    assert not source.pinned
    assert source.source == {"uri": str(root)}


def test_unpinned_read_of_a_missing_uri_is_refused(tmp_path: Path) -> None:
    _, files = read_unpinned(str(tmp_path / "nope"), dataset_type=DatasetType.SFT_PAIR)
    with pytest.raises(Refused, match="no such file or directory"):
        list(files)
