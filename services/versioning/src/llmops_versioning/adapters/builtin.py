"""The built-in backend (``DATA_VERSIONING_ENABLED=false``): no DVC, no git.

A content-addressed object store on local disk and one JSON manifest per version::

    <BUILTIN_STORE_DIR>/objects/<md5[:2]>/<md5[2:]>          file contents, named by their md5
    <BUILTIN_STORE_DIR>/versions/<dataset_id>/<tag>.json     the version's facts and manifest
    <BUILTIN_STORE_DIR>/restores/<restore_id>.json           finished restores (redelivery)

Each file is streamed once: hashed while it is written to a temporary file, which is then
renamed to its object path. The manifest is written last and atomically; it is the commit
point, so a failed version leaves no manifest (objects it already stored are content-addressed
and shared, never confusing). The digest is DVC's '.dir' hash of the same manifest, so a dataset
has the same digest under both backends.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from llmops_shared.events.payloads.datasets import ManifestEntry, RestoreFacts, VersionFacts
from llmops_versioning.adapters.blocking import BlockingBackend, check_writable, dataset_lock
from llmops_versioning.adapters.restore import (
    load_record,
    record_path,
    write_json_atomically,
    write_version,
)
from llmops_versioning.adapters.storage import Location, S3Options, SourceFile, describe
from llmops_versioning.manifest import copy_hashing, dir_digest, sorted_manifest
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersionRequest,
)
from llmops_versioning.safety import LocalAccess, check_md5, check_name, redact_uri


class BuiltinBackend(BlockingBackend):
    """A :class:`~llmops_versioning.ports.VersioningBackend` on a local object store."""

    def __init__(
        self,
        store_dir: Path,
        *,
        s3: S3Options | None = None,
        local_data_roots: Iterable[Path] = (),
    ) -> None:
        self.store_dir = store_dir.resolve()
        self.s3 = s3 or S3Options()
        self.access = LocalAccess.of(local_data_roots, denied=[self.store_dir])

    @property
    def name(self) -> Literal["builtin"]:
        return "builtin"

    def object_path(self, md5: str) -> Path:
        check_md5(md5, what="object")
        return self.store_dir / "objects" / md5[:2] / md5[2:]

    def manifest_path(self, dataset_id: str, tag: str) -> Path:
        check_name(dataset_id, what="dataset id")
        check_name(tag, what="version tag")
        return self.store_dir / "versions" / dataset_id / f"{tag}.json"

    def _ping_sync(self) -> None:
        check_writable(self.store_dir)

    # ------------------------------------------------------------------ versions

    def _create_version(self, request: VersionRequest, progress: ProgressCallback) -> VersionFacts:
        path = self.manifest_path(request.dataset_id, request.version_tag)
        with self._locked(request.dataset_id):
            recorded = self._load(path)
            if recorded is not None:
                version_id, facts = recorded
                if version_id != request.version_id:
                    raise VersioningFailed(
                        f"version tag {request.version_tag} already exists for dataset "
                        f"{request.dataset_id} (version {version_id})"
                    )
                return facts
            source = Location(request.storage_uri, self.s3, access=self.access)
            files = source.list_files()
            try:
                manifest = self._store(source, files, progress)
                facts = VersionFacts(
                    backend="builtin",
                    digest=dir_digest(manifest),
                    file_count=len(manifest),
                    total_bytes=sum(size for _, _, size in manifest),
                    revision=None,
                    tag=request.version_tag,
                    remote_uri=str(self.store_dir),
                    parent_version_id=request.parent_version_id,
                    files=manifest,
                )
                total = facts.total_bytes
                progress(Progress("committing", len(manifest), len(manifest), total, total))
                write_json_atomically(
                    path,
                    {
                        "dataset_id": request.dataset_id,
                        "version_id": request.version_id,
                        "dataset_type": request.dataset_type,
                        "storage_uri": redact_uri(request.storage_uri),
                        "facts": facts.model_dump(mode="json"),
                    },
                )
            except OSError as exc:
                raise VersioningFailed(
                    f"cannot record version {request.version_tag}: {describe(exc)}"
                ) from exc
            return facts

    def _store(
        self, source: Location, files: list[SourceFile], progress: ProgressCallback
    ) -> list[ManifestEntry]:
        """Stream every file into the object store; the manifest."""
        tmp_dir = self.store_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        files_total, bytes_total = len(files), sum(f.size for f in files)
        bytes_done = 0
        entries: list[ManifestEntry] = []
        progress(Progress("fetching", 0, files_total, 0, bytes_total))
        for done, file in enumerate(files, start=1):
            fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="obj.")
            try:
                with os.fdopen(fd, "wb") as writer:
                    try:
                        with source.open_read(file) as reader:
                            md5, size = copy_hashing(reader, writer)
                    except Exception as exc:
                        raise VersioningFailed(
                            f"cannot fetch {file.relpath} from {source.uri}: {describe(exc)}"
                        ) from exc
                target = self.object_path(md5)
                if target.exists():
                    os.unlink(tmp)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            entries.append((file.relpath, md5, size))
            bytes_done += size
            progress(Progress("fetching", done, files_total, bytes_done, bytes_total))
        return sorted_manifest(entries)

    def _load(self, path: Path) -> tuple[str, VersionFacts] | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            return str(data["version_id"]), VersionFacts.model_validate(data["facts"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise VersioningFailed(f"the manifest {path.name} is unreadable: {exc}") from exc

    # ------------------------------------------------------------------ restores

    def _restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        records = self.store_dir / "restores"
        done = load_record(record_path(records, request.restore_id))
        if done is not None:
            return done
        with self._locked(request.dataset_id):
            return self._restore_locked(request, records, progress)

    def _restore_locked(
        self, request: RestoreRequest, records: Path, progress: ProgressCallback
    ) -> RestoreFacts:
        recorded = self._load(self.manifest_path(request.dataset_id, request.version_tag))
        if recorded is None:
            raise VersioningFailed(
                f"version tag {request.version_tag} does not exist for dataset {request.dataset_id}"
            )
        version_id, facts = recorded
        if version_id != request.version_id:
            raise VersioningFailed(
                f"version tag {request.version_tag} of dataset {request.dataset_id} is "
                f"version {version_id}, not {request.version_id}"
            )
        return write_version(
            facts.files,
            self.object_path,
            restore_id=request.restore_id,
            version_id=request.version_id,
            target_uri=request.target_uri,
            s3=self.s3,
            records_dir=records,
            progress=progress,
            access=self.access,
        )

    def _locked(self, dataset_id: str) -> AbstractContextManager[None]:
        return dataset_lock(self.store_dir / "locks", dataset_id)
