"""The DVC backend: one git+DVC repository per dataset, one annotated tag per version.

Layout (see docs/versioning.md)::

    <DVC_REPOS_DIR>/<dataset_id>/      git repo (branch main) + DVC
        data/                          the dataset's files (ignored by git, tracked by data.dvc)
        data.dvc                       DVC's pointer: the '.dir' md5 of data/
        .dvc/config.local              remote, cache dir and credentials (never committed)
    <DVC_REPOS_DIR>/.cache             DVC cache shared by all datasets (unless DVC_CACHE_DIR)
    <DVC_REPOS_DIR>/.restores          records of finished restores (idempotent redelivery)

A version is: fetch ``storage_uri`` into a staging directory, swap it in as ``data/``, ``dvc
add data``, ``git commit`` data.dvc, ``dvc push`` to the remote, and only then the annotated tag
``<version_tag>`` whose message holds the version id. The tag is the commit point: any failure
before it resets the branch to where it was, deletes the new commit and puts the previous
``data/`` back, so a failed version leaves no tag, no commit and no fetched data behind. Objects
already pushed by a failed attempt stay in the remote; they are content-addressed (a path is the
md5 of its bytes), so no later version can be confused by them.

DVC and git run as subprocesses (``python -m dvc`` of this interpreter, ``git``) with the
repository as working directory (:mod:`~llmops_versioning.adapters.dvc_commands`). This module
and its ``dvc_*`` siblings (repository set-up, the DVC cache, an attempt's rollback) are the
only ones that run DVC.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from llmops_shared.events.payloads.datasets import RestoreFacts, VersionFacts
from llmops_versioning.adapters.blocking import BlockingBackend, check_writable, dataset_lock
from llmops_versioning.adapters.dvc_attempt import Attempt, fetch_data, recover, rollback
from llmops_versioning.adapters.dvc_cache import DvcCache
from llmops_versioning.adapters.dvc_commands import Commands, command_env
from llmops_versioning.adapters.dvc_repo import (
    COMMIT_PREFIX,
    DATA,
    DVC_FILE,
    PREVIOUS,
    DatasetRepos,
    normalize_remote,
    tag_ref,
)
from llmops_versioning.adapters.restore import load_record, record_path, write_version
from llmops_versioning.adapters.storage import Location, S3Options, SourceFile
from llmops_versioning.manifest import sorted_manifest
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersionRequest,
)
from llmops_versioning.safety import LocalAccess, check_name, redact_uri

TAG_HEADER: Final = "llmops dataset version "


@dataclass(frozen=True)
class DvcOptions:
    """Where repositories, cache and remote are, and how commands run."""

    repos_dir: Path
    remote_name: str = "storage"
    remote_url: str = ".llmops/versioning/remote"
    cache_dir: Path | None = None
    s3: S3Options = field(default_factory=S3Options)
    author_name: str = "llmops-versioning"
    author_email: str = "versioning@llmops.local"
    command_timeout_s: float = 3600.0
    python: str = sys.executable
    local_data_roots: Sequence[Path] = ()
    """LOCAL_DATA_ROOTS: local sources and targets must be inside one (empty: anywhere outside
    the deny list)."""


class DvcBackend(BlockingBackend):
    """A :class:`~llmops_versioning.ports.VersioningBackend` on git + DVC."""

    def __init__(self, options: DvcOptions) -> None:
        self.options = options
        self.repos_dir = options.repos_dir.resolve()
        self.cache_dir = (options.cache_dir or self.repos_dir / ".cache").resolve()
        self.site_cache_dir = self.repos_dir / ".site-cache"
        self.restores_dir = self.repos_dir / ".restores"
        self.remote_url = normalize_remote(options.remote_url)
        self.public_remote = redact_uri(self.remote_url)
        """The remote as reported and tagged: credentials only in .dvc/config.local."""
        own: list[Path] = [self.repos_dir, self.cache_dir, self.site_cache_dir]
        if "://" not in self.remote_url:
            own.append(Path(self.remote_url))
        self.access = LocalAccess.of(options.local_data_roots, denied=own)
        self._commands = Commands(
            env=command_env(
                author_name=options.author_name,
                author_email=options.author_email,
                s3_retries=options.s3.retries,
            ),
            timeout_s=options.command_timeout_s,
            python=options.python,
        )
        self._repos = DatasetRepos(
            self._commands,
            remote_name=options.remote_name,
            remote_url=self.remote_url,
            cache_dir=self.cache_dir,
            site_cache_dir=self.site_cache_dir,
            s3=options.s3,
        )
        self._cache = DvcCache(
            self._commands, self._repos, cache_dir=self.cache_dir, public_remote=self.public_remote
        )

    @property
    def name(self) -> Literal["dvc"]:
        return "dvc"

    def repo(self, dataset_id: str) -> Path:
        """The repository of a dataset."""
        return self.repos_dir / check_name(dataset_id, what="dataset id")

    tag_ref = staticmethod(tag_ref)

    def check_tag(self, tag: str) -> None:
        """Refuse a tag name git refuses (``v1.``, ``a..b``, ``x.lock``) before any work."""
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        result = self._commands.run(
            ["git", "check-ref-format", tag_ref(tag)],
            self.repos_dir,
            what="git check-ref-format",
            check=False,
        )
        if result.returncode != 0 or tag.startswith("-"):
            raise VersioningFailed(
                f"version tag {tag!r} is not a valid git tag name "
                f"(git check-ref-format refuses {tag_ref(tag)})"
            )

    def object_path(self, md5: str) -> Path:
        """Where DVC 3 keeps an object in the cache (``files/md5/ab/cdef...``)."""
        return self._cache.object_path(md5)

    def _ping_sync(self) -> None:
        check_writable(self.repos_dir)
        if shutil.which("git") is None:
            raise FileNotFoundError("git is not installed")

    def _configure(self, root: Path) -> None:
        """Write the repository's ``.dvc/config.local`` (remote, credentials, cache)."""
        self._repos.configure(root)

    def _locked(self, dataset_id: str) -> contextlib.AbstractContextManager[None]:
        return dataset_lock(self.repos_dir / ".locks", dataset_id)

    # ------------------------------------------------------------------ versions

    def _create_version(self, request: VersionRequest, progress: ProgressCallback) -> VersionFacts:
        root = self.repo(request.dataset_id)
        self.check_tag(request.version_tag)
        with self._locked(request.dataset_id):
            if self._repos.has_head(root):
                self._configure(root)
                recover(self._commands, root)
                existing = self._existing_version(root, request)
                if existing is not None:
                    return existing
            source = Location(request.storage_uri, self.options.s3, access=self.access)
            files = source.list_files()
            self._repos.ensure(root, request.dataset_id)
            base = self._commands.git(root, "rev-parse", "HEAD")
            state = Attempt()
            try:
                return self._record(root, request, source, files, progress, state)
            except BaseException:
                rollback(self._commands, root, base, request.version_tag, state)
                raise

    def _record(
        self,
        root: Path,
        request: VersionRequest,
        source: Location,
        files: list[SourceFile],
        progress: ProgressCallback,
        state: Attempt,
    ) -> VersionFacts:
        git = self._commands.git
        sizes = fetch_data(root, source, files, progress, state)
        files_total, bytes_total = len(sizes), sum(sizes.values())
        progress(Progress("hashing", 0, files_total, 0, bytes_total))
        self._commands.dvc(root, "add", DATA)
        digest = self._cache.dir_md5(self._repos.dvc_file(root, None))
        tree = self._cache.tree(root, digest, tag=None)
        if {entry[0] for entry in tree} != set(sizes):
            raise VersioningFailed(
                f"DVC tracked {len(tree)} files of {request.storage_uri} but {files_total} were "
                "fetched (a .dvcignore in the data?)"
            )
        manifest = sorted_manifest((path, md5, sizes[path]) for path, md5 in tree)
        progress(Progress("committing", files_total, files_total, bytes_total, bytes_total))
        git(root, "add", "--", DVC_FILE, ".gitignore")
        message = f"{COMMIT_PREFIX}{request.version_tag}\n\nversion_id: {request.version_id}\n"
        self._commands.commit(root, message)
        state.committed = True
        progress(Progress("pushing", 0, files_total, 0, bytes_total))
        self._commands.dvc(root, "push", DVC_FILE)
        progress(Progress("pushing", files_total, files_total, bytes_total, bytes_total))
        git(
            root,
            "tag",
            "--annotate",
            "-m",
            self._tag_message(request),
            "--",
            request.version_tag,
        )
        state.tagged = True
        revision = self._repos.commit_of(root, request.version_tag)
        shutil.rmtree(root / PREVIOUS, ignore_errors=True)
        return VersionFacts(
            backend="dvc",
            digest=digest,
            file_count=len(manifest),
            total_bytes=sum(size for _, _, size in manifest),
            revision=revision,
            tag=request.version_tag,
            remote_uri=self.public_remote,
            parent_version_id=request.parent_version_id,
            files=manifest,
        )

    def _tag_message(self, request: VersionRequest) -> str:
        return (
            f"{TAG_HEADER}{request.version_tag}\n\n"
            f"dataset_id: {request.dataset_id}\n"
            f"version_id: {request.version_id}\n"
            f"parent_version_id: {request.parent_version_id or ''}\n"
            f"dataset_type: {request.dataset_type}\n"
            f"storage_uri: {redact_uri(request.storage_uri)}\n"
            f"remote_uri: {self.public_remote}\n"
        )

    def _existing_version(self, root: Path, request: VersionRequest) -> VersionFacts | None:
        fields = self._repos.tag_fields(root, request.version_tag)
        if fields is None:
            return None
        if fields.get("version_id") != request.version_id:
            raise VersioningFailed(
                f"version tag {request.version_tag} already exists for dataset "
                f"{request.dataset_id} (version {fields.get('version_id') or 'unknown'})"
            )
        return self._facts_at(root, request.version_tag, fields)

    def _facts_at(self, root: Path, tag: str, fields: dict[str, str]) -> VersionFacts:
        """The facts of a recorded version, rebuilt from its tag (a redelivery)."""
        manifest = self._cache.manifest_at(root, tag)
        return VersionFacts(
            backend="dvc",
            digest=self._cache.dir_md5(self._repos.dvc_file(root, tag)),
            file_count=len(manifest),
            total_bytes=sum(size for _, _, size in manifest),
            revision=self._repos.commit_of(root, tag),
            tag=tag,
            remote_uri=redact_uri(fields.get("remote_uri") or self.public_remote),
            parent_version_id=fields.get("parent_version_id") or None,
            files=manifest,
        )

    # ------------------------------------------------------------------ restores

    def _restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        done = load_record(record_path(self.restores_dir, request.restore_id))
        if done is not None:
            return done
        root = self.repo(request.dataset_id)
        self.check_tag(request.version_tag)
        if not self._repos.has_head(root):
            raise VersioningFailed(f"dataset {request.dataset_id} has no recorded versions")
        with self._locked(request.dataset_id):
            self._configure(root)
            fields = self._repos.tag_fields(root, request.version_tag)
            if fields is None:
                raise VersioningFailed(
                    f"version tag {request.version_tag} does not exist for dataset "
                    f"{request.dataset_id}"
                )
            if fields.get("version_id") != request.version_id:
                raise VersioningFailed(
                    f"version tag {request.version_tag} of dataset {request.dataset_id} is "
                    f"version {fields.get('version_id')}, not {request.version_id}"
                )
            manifest = self._cache.manifest_at(root, request.version_tag)
            return write_version(
                manifest,
                self.object_path,
                restore_id=request.restore_id,
                version_id=request.version_id,
                target_uri=request.target_uri,
                s3=self.options.s3,
                records_dir=self.restores_dir,
                progress=progress,
                access=self.access,
            )
