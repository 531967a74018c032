"""Where datasets come from and where restores go: local paths and S3 (fsspec + s3fs).

A :class:`Location` is a directory tree behind a URI: ``/abs/path``, ``file:///abs/path`` or
``s3://bucket/prefix`` (with the endpoint and credentials of :class:`S3Options`, so MinIO and
moto work). Files are listed with their sizes first (totals for progress reports), then
streamed one by one: a dataset is never held in memory. Every failure is raised as
:class:`~llmops_versioning.ports.VersioningFailed` with a one-line reason naming the URI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydantic import SecretStr

from llmops_versioning.manifest import IGNORED_DIRS, one_line
from llmops_versioning.ports import VersioningFailed
from llmops_versioning.safety import (
    LocalAccess,
    check_relpath,
    redact_uri,
    safe_join,
    unsafe_relpath,
)


@dataclass(frozen=True)
class S3Options:
    """How to reach S3 (or an S3-compatible server); ``None`` values defer to boto's defaults."""

    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    region: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retries: int = 2

    def __repr__(self) -> str:  # no secrets, even masked ones, in logs
        return f"S3Options(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a location: path relative to its root ('/' separated), full path, size."""

    relpath: str
    path: str
    size: int


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    text = one_line(str(exc), 500)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def s3_filesystem(options: S3Options) -> Any:
    """An ``s3fs.S3FileSystem`` with bounded timeouts and retries (an outage fails fast)."""
    import s3fs  # type: ignore[import-untyped]  # local: local-only setups never import boto

    client_kwargs: dict[str, Any] = {}
    if options.endpoint_url:
        client_kwargs["endpoint_url"] = options.endpoint_url
    if options.region:
        client_kwargs["region_name"] = options.region
    fs = s3fs.S3FileSystem(
        key=options.access_key_id.get_secret_value() if options.access_key_id else None,
        secret=options.secret_access_key.get_secret_value() if options.secret_access_key else None,
        client_kwargs=client_kwargs,
        config_kwargs={
            "connect_timeout": options.connect_timeout_s,
            "read_timeout": options.read_timeout_s,
            "retries": {"max_attempts": options.retries, "mode": "standard"},
        },
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    fs.retries = options.retries  # s3fs's own retry loop (class default 5, with backoff)
    return fs


def local_path(uri: str) -> Path | None:
    """The absolute path of a local URI (``/x`` or ``file:///x``); ``None`` for other schemes."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
        if not uri.startswith("/"):
            raise VersioningFailed(f"{uri!r}: file:// URIs must hold an absolute path")
    if uri.startswith("/"):
        return Path(uri)
    return None


class Location:
    """A directory tree behind a URI (local or S3).

    A local path is checked against ``access`` (deny list, ``LOCAL_DATA_ROOTS``) and used
    resolved; ``writing`` marks a restore target. ``uri`` in messages is redacted.
    """

    def __init__(
        self,
        uri: str,
        s3: S3Options,
        *,
        access: LocalAccess | None = None,
        what: str = "storage_uri",
        writing: bool = False,
    ) -> None:
        self.uri = redact_uri(uri)
        self.what = what
        path = local_path(uri)
        if path is not None:
            path = (access or LocalAccess.of()).check(path, what=what, uri=uri, writing=writing)
        self.local = path
        self.access = access or LocalAccess.of()
        if path is not None:
            self.root = str(path).rstrip("/") or "/"
            self._fs: Any = None
        elif uri.startswith("s3://"):
            self.root = uri[len("s3://") :].strip("/")
            if not self.root:
                raise VersioningFailed(f"{uri!r} names no bucket")
            self._fs = s3_filesystem(s3)
        else:
            scheme = uri.split(":", 1)[0]
            raise VersioningFailed(
                f"{uri!r}: unsupported scheme {scheme!r} (use a local path, file:// or s3://)"
            )

    # ------------------------------------------------------------------ reading

    def list_files(self, *, what: str = "storage_uri") -> list[SourceFile]:
        """Every file under the root, sorted by relpath; refuses a missing or empty tree."""
        try:
            files = self._list_local() if self.local is not None else self._list_s3(what)
        except VersioningFailed:
            raise
        except Exception as exc:
            raise VersioningFailed(f"cannot list {what} {self.uri}: {describe(exc)}") from exc
        if files is None:
            raise VersioningFailed(f"{what} {self.uri} does not exist")
        if not files:
            raise VersioningFailed(f"{what} {self.uri} contains no files")
        return sorted(files, key=lambda f: f.relpath)

    def _list_local(self) -> list[SourceFile] | None:
        assert self.local is not None
        root = self.local
        if root.is_file():
            rel = check_relpath(root.name, what=f"{self.what} {self.uri}: file")
            return [SourceFile(rel, str(root), root.stat().st_size)]
        if not root.is_dir():
            return None
        files: list[SourceFile] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
            rel_dir = os.path.relpath(dirpath, root)
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                    raise VersioningFailed(
                        f"{self.what} {self.uri}: {rel} is a symbolic link to a directory; "
                        "not supported"
                    )
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                check_relpath(rel, what=f"{self.what} {self.uri}: file")
                if os.path.islink(full):  # a link versions its target's bytes: check where
                    self.access.check(
                        Path(os.path.realpath(full)), what=f"{self.what} file", uri=rel
                    )
                stat = os.stat(full)
                if not os.path.isfile(full):
                    continue
                files.append(SourceFile(rel, full, stat.st_size))
        return files

    def _list_s3(self, what: str) -> list[SourceFile] | None:
        fs = self._fs
        if "/" in self.root and fs.isfile(self.root):
            rel = check_relpath(self.root.rsplit("/", 1)[1], what=f"object key of {self.uri}")
            return [SourceFile(rel, self.root, int(fs.size(self.root)))]
        found = cast(dict[str, dict[str, Any]], fs.find(self.root, detail=True))
        if not found and not fs.exists(self.root):
            return None
        files: list[SourceFile] = []
        prefix = self.root + "/"
        for path, info in found.items():
            if info.get("type") != "file" or path.endswith("/") or not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            if unsafe_relpath(rel):
                key = path.split("/", 1)[1] if "/" in path else path
                raise VersioningFailed(
                    f"object key {key!r} under {what} {self.uri} is not a safe relative path"
                )
            if any(part in IGNORED_DIRS for part in rel.split("/")[:-1]):
                continue
            files.append(SourceFile(rel, path, int(info.get("size") or 0)))
        return files

    @contextmanager
    def open_read(self, source: SourceFile) -> Iterator[BinaryIO]:
        """A binary stream of one listed file."""
        if self.local is not None:
            with open(source.path, "rb") as handle:
                yield handle
        else:
            with self._fs.open(source.path, "rb") as handle:
                yield cast(BinaryIO, handle)

    def download(self, sources: list[SourceFile], targets: list[Path]) -> None:
        """Copy listed files to local paths; S3 downloads run concurrently (one batch)."""
        if self.local is not None:
            for source, target in zip(sources, targets, strict=True):
                shutil.copyfile(source.path, target)
        else:
            self._fs.get([s.path for s in sources], [str(t) for t in targets])

    # ------------------------------------------------------------------ writing (restores)

    def upload(self, sources: list[Path], relpaths: list[str]) -> None:
        """Copy local files to ``<root>/<relpath>``; S3 uploads run concurrently (one batch)."""
        if self.local is not None:
            for source, relpath in zip(sources, relpaths, strict=True):
                target = safe_join(self.local, relpath)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        else:
            keys = [f"{self.root}/{check_relpath(r, what='path')}" for r in relpaths]
            self._fs.put([str(s) for s in sources], keys)

    def is_empty(self) -> bool:
        """Nothing is there (missing, or an empty directory / prefix)."""
        if self.local is not None:
            if not self.local.exists():
                return True
            return self.local.is_dir() and not any(self.local.iterdir())
        return not self._fs.find(self.root, maxdepth=None, withdirs=False)

    def remove_files(self, relpaths: list[str]) -> None:
        """Delete ``<root>/<relpath>`` for each path (those that exist), then the directories
        this leaves empty below the root: what one restore wrote, nothing else."""
        if self.local is not None:
            parents: set[Path] = set()
            for relpath in relpaths:
                path = safe_join(self.local, relpath)
                if path.is_file() or path.is_symlink():
                    path.unlink()
                parents.update(path.parents)
            base = self.local.resolve()
            for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
                if directory.is_relative_to(base) and directory != base:
                    with contextlib.suppress(OSError):  # not empty: someone else's files
                        directory.rmdir()
            return
        keys = [f"{self.root}/{check_relpath(r, what='path')}" for r in relpaths]
        existing = set(self._fs.find(self.root))
        doomed = [key for key in keys if key in existing]
        if doomed:
            self._fs.rm(doomed)
