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
repository as working directory: DVC's global state (cwd-relative paths, logging, its event
loop) stays out of the worker, and every command has a timeout. This is the only module that
runs DVC.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from llmops_shared.events.payloads.datasets import ManifestEntry, RestoreFacts, VersionFacts
from llmops_versioning.adapters.blocking import BlockingBackend, check_writable, dataset_lock
from llmops_versioning.adapters.restore import load_record, record_path, write_version
from llmops_versioning.adapters.storage import (
    Location,
    S3Options,
    SourceFile,
    describe,
    local_path,
)
from llmops_versioning.manifest import one_line, sorted_manifest
from llmops_versioning.ports import (
    Progress,
    ProgressCallback,
    RestoreRequest,
    VersioningFailed,
    VersionRequest,
)
from llmops_versioning.safety import (
    LocalAccess,
    check_md5,
    check_name,
    check_relpath,
    redact_uri,
    safe_join,
)

DATA: Final = "data"
DVC_FILE: Final = "data.dvc"
STAGING: Final = ".llmops-staging"
PREVIOUS: Final = ".llmops-previous"
BRANCH: Final = "main"
COMMIT_PREFIX: Final = "llmops: dataset version "
TAG_HEADER: Final = "llmops dataset version "
BATCH: Final = 64
"""Files fetched per batch (S3 downloads of a batch run concurrently)."""

_FETCH_REV: Final = (
    "import sys\n"
    "from dvc.repo import Repo\n"
    "with Repo(sys.argv[1]) as repo:\n"
    "    repo.fetch(targets=[sys.argv[3]], revs=[sys.argv[2]], workspace=False)\n"
)
"""``dvc fetch`` of one revision (the CLI only fetches the workspace, or all tags/commits)."""


class CommandFailed(VersioningFailed):
    """A git or dvc command exited non-zero or timed out; the message says which and why."""


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


def normalize_remote(url: str) -> str:
    """A local remote as an absolute path (DVC resolves relative ones against .dvc/)."""
    path = local_path(url) if url.startswith(("/", "file://")) else None
    if path is not None:
        return str(path)
    if "://" in url:
        return url
    return str(Path(url).resolve())


def _ini(value: str) -> str:
    """A configobj value, quoted so that '#', ',' or spaces survive."""
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return f'"""{value}"""'


def error_line(output: str) -> str:
    """The useful part of DVC/git output: its ERROR lines, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    if errors:
        return one_line("; ".join(errors), 600)
    noise = ("Having any troubles?", "Hit us up", "https://dvc.org/support")
    useful = [line for line in lines if not line.startswith(noise)]
    return one_line(useful[-1], 600) if useful else "no output"


def parse_tag_message(message: str) -> dict[str, str]:
    """The ``key: value`` lines of a version tag's message."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            fields[key.strip()] = value.strip()
    return fields


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
        self._env = {
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": options.author_name,
            "GIT_AUTHOR_EMAIL": options.author_email,
            "GIT_COMMITTER_NAME": options.author_name,
            "GIT_COMMITTER_EMAIL": options.author_email,
            "GIT_TERMINAL_PROMPT": "0",
        }
        # botocore's attempts per S3 request in DVC (DVC has no option for it): an unreachable
        # endpoint fails in seconds, not minutes; an operator's own AWS_MAX_ATTEMPTS wins
        self._env.setdefault("AWS_MAX_ATTEMPTS", str(max(1, options.s3.retries)))
        self._env.setdefault("AWS_RETRY_MODE", "standard")

    @property
    def name(self) -> Literal["dvc"]:
        return "dvc"

    def repo(self, dataset_id: str) -> Path:
        """The repository of a dataset."""
        return self.repos_dir / check_name(dataset_id, what="dataset id")

    @staticmethod
    def tag_ref(tag: str) -> str:
        """The full ref of a version tag: never ambiguous with HEAD, ORIG_HEAD, a branch..."""
        return f"refs/tags/{tag}"

    def check_tag(self, tag: str) -> None:
        """Refuse a tag name git refuses (``v1.``, ``a..b``, ``x.lock``) before any work."""
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        result = self._run(
            ["git", "check-ref-format", self.tag_ref(tag)],
            self.repos_dir,
            what="git check-ref-format",
            check=False,
        )
        if result.returncode != 0 or tag.startswith("-"):
            raise VersioningFailed(
                f"version tag {tag!r} is not a valid git tag name "
                f"(git check-ref-format refuses {self.tag_ref(tag)})"
            )

    def _ping_sync(self) -> None:
        check_writable(self.repos_dir)
        if shutil.which("git") is None:
            raise FileNotFoundError("git is not installed")

    # ------------------------------------------------------------------ versions

    def _create_version(self, request: VersionRequest, progress: ProgressCallback) -> VersionFacts:
        root = self.repo(request.dataset_id)
        self.check_tag(request.version_tag)
        with self._locked(request.dataset_id):
            if self._has_head(root):
                self._configure(root)
                self._recover(root)
                existing = self._existing_version(root, request)
                if existing is not None:
                    return existing
            source = Location(request.storage_uri, self.options.s3, access=self.access)
            files = source.list_files()
            self._ensure_repo(root, request.dataset_id)
            base = self._git(root, "rev-parse", "HEAD")
            state = _Attempt()
            try:
                return self._record(root, request, source, files, progress, state)
            except BaseException:
                self._rollback(root, base, request.version_tag, state)
                raise

    def _record(
        self,
        root: Path,
        request: VersionRequest,
        source: Location,
        files: list[SourceFile],
        progress: ProgressCallback,
        state: _Attempt,
    ) -> VersionFacts:
        sizes = self._fetch(root, source, files, progress, state)
        files_total, bytes_total = len(sizes), sum(sizes.values())
        progress(Progress("hashing", 0, files_total, 0, bytes_total))
        self._dvc(root, "add", DATA)
        digest = self._dir_md5(self._git_show_or_file(root, None))
        tree = self._tree(root, digest, tag=None)
        if {entry[0] for entry in tree} != set(sizes):
            raise VersioningFailed(
                f"DVC tracked {len(tree)} files of {request.storage_uri} but {files_total} were "
                "fetched (a .dvcignore in the data?)"
            )
        manifest = sorted_manifest((path, md5, sizes[path]) for path, md5 in tree)
        progress(Progress("committing", files_total, files_total, bytes_total, bytes_total))
        self._git(root, "add", "--", DVC_FILE, ".gitignore")
        self._git(
            root,
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "-m",
            f"{COMMIT_PREFIX}{request.version_tag}\n\nversion_id: {request.version_id}\n",
        )
        state.committed = True
        progress(Progress("pushing", 0, files_total, 0, bytes_total))
        self._dvc(root, "push", DVC_FILE)
        progress(Progress("pushing", files_total, files_total, bytes_total, bytes_total))
        self._git(
            root,
            "tag",
            "--annotate",
            "-m",
            self._tag_message(request),
            "--",
            request.version_tag,
        )
        state.tagged = True
        revision = self._commit_of(root, request.version_tag)
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

    def _fetch(
        self,
        root: Path,
        source: Location,
        files: list[SourceFile],
        progress: ProgressCallback,
        state: _Attempt,
    ) -> dict[str, int]:
        """Copy the source into a staging dir, then swap it in as ``data/``; relpath -> size."""
        staging = root / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        files_total, bytes_total = len(files), sum(f.size for f in files)
        bytes_done = 0
        sizes: dict[str, int] = {}
        progress(Progress("fetching", 0, files_total, 0, bytes_total))
        for start in range(0, files_total, BATCH):
            batch = files[start : start + BATCH]
            targets = [safe_join(staging, file.relpath, what="source file") for file in batch]
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
            try:
                source.download(batch, targets)
            except Exception as exc:
                raise VersioningFailed(
                    f"cannot fetch {batch[0].relpath} (and {len(batch) - 1} more) from "
                    f"{source.uri}: {describe(exc)}"
                ) from exc
            for file, target in zip(batch, targets, strict=True):
                size = target.stat().st_size
                sizes[file.relpath] = size
                bytes_done += size
            progress(Progress("fetching", len(sizes), files_total, bytes_done, bytes_total))
        data = root / DATA
        state.had_data = data.exists()
        if state.had_data:
            shutil.rmtree(root / PREVIOUS, ignore_errors=True)
            data.rename(root / PREVIOUS)
        staging.rename(data)
        state.swapped = True
        return sizes

    def _rollback(self, root: Path, base: str, tag: str, state: _Attempt) -> None:
        """Put the repository back exactly as it was before this attempt (best effort)."""
        with contextlib.suppress(Exception):
            if state.tagged:
                self._git(root, "tag", "-d", tag)
        with contextlib.suppress(Exception):
            self._git(root, "reset", "--quiet", "--hard", base)
            self._git(root, "clean", "-fdq")
        shutil.rmtree(root / STAGING, ignore_errors=True)
        if state.swapped:
            shutil.rmtree(root / DATA, ignore_errors=True)
            if state.had_data:
                with contextlib.suppress(OSError):
                    (root / PREVIOUS).rename(root / DATA)

    def _recover(self, root: Path) -> None:
        """Undo what a crashed attempt left (a worker killed between two steps)."""
        previous = root / PREVIOUS
        if previous.exists():
            shutil.rmtree(root / DATA, ignore_errors=True)
            previous.rename(root / DATA)
        shutil.rmtree(root / STAGING, ignore_errors=True)
        head_message = self._git(root, "log", "-1", "--format=%B")
        if head_message.startswith(COMMIT_PREFIX) and not self._git(
            root, "tag", "--points-at", "HEAD"
        ):
            self._git(root, "reset", "--quiet", "--hard", "HEAD~1")
        self._git(root, "reset", "--quiet", "--hard")
        self._git(root, "clean", "-fdq")

    def _existing_version(self, root: Path, request: VersionRequest) -> VersionFacts | None:
        fields = self._tag_fields(root, request.version_tag)
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
        manifest = self._manifest_at(root, tag)
        return VersionFacts(
            backend="dvc",
            digest=self._dir_md5(self._git_show_or_file(root, tag)),
            file_count=len(manifest),
            total_bytes=sum(size for _, _, size in manifest),
            revision=self._commit_of(root, tag),
            tag=tag,
            remote_uri=redact_uri(fields.get("remote_uri") or self.public_remote),
            parent_version_id=fields.get("parent_version_id") or None,
            files=manifest,
        )

    def _manifest_at(self, root: Path, tag: str) -> list[ManifestEntry]:
        """``(relpath, md5, size)`` of a tagged version; fetched from the remote if needed."""
        digest = self._dir_md5(self._git_show_or_file(root, tag))
        tree = self._tree(root, digest, tag=tag)
        if any(not self.object_path(md5).exists() for _, md5 in tree):
            self._fetch_rev(root, tag)
        try:
            return sorted_manifest(
                (path, md5, self.object_path(md5).stat().st_size) for path, md5 in tree
            )
        except FileNotFoundError as exc:
            raise VersioningFailed(
                f"version {tag}: object {Path(exc.filename or '').name} is neither in the cache "
                f"nor in the remote {self.public_remote}"
            ) from exc

    # ------------------------------------------------------------------ restores

    def _restore(self, request: RestoreRequest, progress: ProgressCallback) -> RestoreFacts:
        done = load_record(record_path(self.restores_dir, request.restore_id))
        if done is not None:
            return done
        root = self.repo(request.dataset_id)
        self.check_tag(request.version_tag)
        if not self._has_head(root):
            raise VersioningFailed(f"dataset {request.dataset_id} has no recorded versions")
        with self._locked(request.dataset_id):
            self._configure(root)
            fields = self._tag_fields(root, request.version_tag)
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
            manifest = self._manifest_at(root, request.version_tag)
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

    # ------------------------------------------------------------------ DVC cache and files

    def object_path(self, md5: str) -> Path:
        """Where DVC 3 keeps an object in the cache (``files/md5/ab/cdef...``)."""
        check_md5(md5, what="object")
        return self.cache_dir / "files" / "md5" / md5[:2] / md5[2:]

    def _git_show_or_file(self, root: Path, tag: str | None) -> str:
        """``data.dvc`` of the working tree (``None``) or at a version tag."""
        if tag is None:
            return (root / DVC_FILE).read_text(encoding="utf-8")
        return self._git(root, "show", f"{self.tag_ref(tag)}:{DVC_FILE}", "--")

    def _commit_of(self, root: Path, tag: str) -> str:
        """The commit a version tag points at."""
        return self._git(root, "rev-parse", "--verify", f"{self.tag_ref(tag)}^{{commit}}")

    @staticmethod
    def _dir_md5(dvc_file: str) -> str:
        data: Any = yaml.safe_load(dvc_file)
        try:
            md5 = str(data["outs"][0]["md5"])
        except (KeyError, IndexError, TypeError) as exc:
            raise VersioningFailed(f"{DVC_FILE} has no output md5") from exc
        if not md5.endswith(".dir"):
            raise VersioningFailed(f"{DVC_FILE} does not track a directory ({md5})")
        return check_md5(md5, what=DVC_FILE)

    def _tree(self, root: Path, digest: str, *, tag: str | None) -> list[tuple[str, str]]:
        """``(relpath, md5)`` of a '.dir' object, from the cache or fetched from the remote.

        The object may come from the remote: every relpath and md5 is checked before it is
        joined to a directory.
        """
        path = self.object_path(digest)
        if not path.exists() and tag is not None:
            self._fetch_rev(root, tag)
        try:
            entries = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise VersioningFailed(
                f"the manifest {digest} is neither in the cache nor in the remote "
                f"{self.public_remote}"
            ) from exc
        tree = [(str(entry["relpath"]), str(entry["md5"])) for entry in entries]
        for relpath, md5 in tree:
            check_relpath(relpath, what=f"the manifest {digest}: path")
            check_md5(md5, what=f"the manifest {digest} ({relpath})")
        return tree

    def _fetch_rev(self, root: Path, tag: str) -> None:
        """``dvc fetch`` of a version: the commit its tag points at, never a bare name."""
        commit = self._commit_of(root, tag)
        self._run(
            [self.options.python, "-c", _FETCH_REV, str(root), commit, DVC_FILE],
            root,
            what=f"dvc fetch of {tag}",
        )

    # ------------------------------------------------------------------ repository set-up

    def _ensure_repo(self, root: Path, dataset_id: str) -> None:
        """git init + dvc init + a first commit, unless done; remote and cache config always."""
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".git").is_dir():
            self._git(root, "init", "--quiet", f"--initial-branch={BRANCH}")
        if self._has_head(root):
            self._configure(root)
            return
        self._dvc(root, "init", "--quiet", "--force")
        exclude = root / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            handle.write(f"/{STAGING}\n/{PREVIOUS}\n")
        self._configure(root)
        self._git(root, "add", "--all")
        self._git(
            root,
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "-m",
            f"llmops: dataset repository {dataset_id}",
        )

    def _configure(self, root: Path) -> None:
        """Write ``.dvc/config.local`` (remote, credentials, cache): never committed, 0600."""
        s3 = self.options.s3
        remote = [f"    url = {_ini(self.remote_url)}"]
        if self.remote_url.startswith("s3://"):
            if s3.endpoint_url:
                remote.append(f"    endpointurl = {_ini(s3.endpoint_url)}")
            if s3.region:
                remote.append(f"    region = {_ini(s3.region)}")
            if s3.access_key_id:
                remote.append(f"    access_key_id = {_ini(s3.access_key_id.get_secret_value())}")
            if s3.secret_access_key:
                secret = s3.secret_access_key.get_secret_value()
                remote.append(f"    secret_access_key = {_ini(secret)}")
            remote.append(f"    connect_timeout = {max(1, int(s3.connect_timeout_s))}")
            remote.append(f"    read_timeout = {max(1, int(s3.read_timeout_s))}")
        text = "\n".join(
            [
                "[core]",
                f"    remote = {self.options.remote_name}",
                f"    site_cache_dir = {_ini(str(self.site_cache_dir))}",
                "    analytics = false",
                "    autostage = false",
                "[cache]",
                f"    dir = {_ini(str(self.cache_dir))}",
                f"['remote \"{self.options.remote_name}\"']",
                *remote,
                "",
            ]
        )
        path = root / ".dvc" / "config.local"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    def _has_head(self, root: Path) -> bool:
        """The repository exists and has its first commit (set-up finished)."""
        if not (root / ".git").is_dir():
            return False
        return bool(self._git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False))

    def _tag_fields(self, root: Path, tag: str) -> dict[str, str] | None:
        ref = self.tag_ref(tag)
        if not self._git(root, "rev-parse", "--verify", "--quiet", ref, check=False):
            return None
        message = self._git(root, "for-each-ref", "--format=%(contents)", ref)
        return parse_tag_message(message)

    def _locked(self, dataset_id: str) -> contextlib.AbstractContextManager[None]:
        return dataset_lock(self.repos_dir / ".locks", dataset_id)

    # ------------------------------------------------------------------ commands

    def _git(self, root: Path, *args: str, check: bool = True) -> str:
        result = self._run(
            [
                "git",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
                *args,
            ],
            root,
            what=f"git {args[0]}",
            check=check,
        )
        return result.stdout.strip()

    def _dvc(self, root: Path, *args: str) -> None:
        self._run([self.options.python, "-m", "dvc", *args], root, what=f"dvc {args[0]}")

    def _run(
        self, argv: list[str], cwd: Path, *, what: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                argv,
                cwd=cwd,
                env=self._env,
                capture_output=True,
                text=True,
                timeout=self.options.command_timeout_s,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandFailed(f"{what}: {argv[0]} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(
                f"{what} timed out after {self.options.command_timeout_s:g}s"
            ) from exc
        if check and result.returncode != 0:
            raise CommandFailed(f"{what} failed: {error_line(result.stderr + result.stdout)}")
        return result


@dataclass
class _Attempt:
    """What one version attempt has changed so far (for its rollback)."""

    swapped: bool = False
    had_data: bool = False
    committed: bool = False
    tagged: bool = False
