"""A GitHub REST API TEST DOUBLE that the real ``PyGithub`` (2.x) runs against.

This is not GitHub. It is a small in-process HTTP server (stdlib ``ThreadingHTTPServer`` on
127.0.0.1, a free port) that speaks the part of the REST API the github-sync worker uses, with
GitHub's status codes and error bodies, so the real client code is exercised::

    with GitHubServer() as gh:
        gh.create_repo("acme", "deploy", files={"README.md": b"hi"})
        g = Github(base_url=gh.url, auth=Auth.Token(gh.token))
        g.get_repo("acme/deploy").get_contents("README.md").decoded_content == b"hi"

What PyGithub sends, and what the double answers (all recorded in :attr:`GitHubServer.requests`):

* ``GET /repos/{o}/{r}``: the repository (``default_branch``...).
* ``GET /repos/{o}/{r}/contents/{path}?ref=``: a file (base64 ``content``, blob ``sha``) or a
  directory listing; ``404`` ``Not Found``. ``PUT`` the same path (``message``, base64
  ``content``, ``sha``, ``branch``, ``author``): ``201`` created / ``200`` updated with
  ``content`` and ``commit``; ``409`` when ``sha`` is not the file's current blob sha (or
  :meth:`conflict_next_put`), ``422`` when the file exists and no ``sha`` was supplied or a parent
  is a file, ``404`` for an unknown branch.
* Git data: ``GET /git/ref/{ref}``, ``PATCH /git/refs/{ref}`` (``sha``, ``force``; ``422``
  "Update is not a fast forward"), ``POST /git/refs`` (``422`` "Reference already exists"),
  ``GET``/``POST /git/commits``, ``GET /git/trees/{sha}?recursive=1``, ``POST /git/trees``
  (``base_tree``; entries by ``sha`` or inline ``content``; ``sha: null`` deletes), ``GET``/
  ``POST /git/blobs``.
* ``GET /pulls?state=&head=owner:branch&base=`` and ``POST /pulls`` (``422`` "A pull request
  already exists").
* ``POST /app/installations/{id}/access_tokens`` with ``Authorization: Bearer <JWT>``: the JWT
  is verified with the App's public key (:meth:`register_app`); the answer is an installation
  token (``expires_at`` in an hour) the double then accepts like :attr:`token`.
* ``401`` ``Bad credentials`` without a known token; :meth:`rate_limit_next` answers the next
  requests ``403``/``429`` with ``Retry-After``, ``X-RateLimit-Remaining: 0`` and
  ``X-RateLimit-Reset`` and GitHub's "API rate limit exceeded" message.

Simplified: a commit's tree is stored flat (path -> blob sha; directories are derived), tree and
commit shas are sha1 digests of our own encoding (blob shas are real git blob shas), no
pagination (one page of everything), no merges, one user that owns every repository.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from support.http_double import DoubleHandler, HttpDouble, bound_handler

DEFAULT_TOKEN = "ghp_test_token"
_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


def blob_sha(content: bytes) -> str:
    """The git blob sha1 of ``content`` (what GitHub reports as a file's ``sha``)."""
    return hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()


@dataclass
class _Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]
    date: str


@dataclass
class _Repo:
    owner: str
    name: str
    default_branch: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> {path: blob sha}
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> commit sha
    pulls: list[dict[str, Any]] = field(default_factory=list)


class _Error(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class GitHubServer(HttpDouble):
    """In-process GitHub REST API test double on 127.0.0.1 (free port)."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self._tokens = {token}
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._apps: dict[str, tuple[str, int]] = {}  # app id -> (public key PEM, installation)
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._rate_limited: list[tuple[int, float]] = []
        self._conflicts = 0

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return bound_handler(_Handler, gh=self)

    # ------------------------------------------------------------------ content and inspection

    def create_repo(
        self,
        owner: str,
        name: str,
        default_branch: str = "main",
        files: Mapping[str, bytes] | None = None,
    ) -> str:
        """A repository with one commit on ``default_branch`` holding ``files``; its sha."""
        with self._lock:
            repo = _Repo(owner, name, default_branch)
            self._repos[(owner, name)] = repo
            tree = self._tree(repo, {p: self._blob(repo, c) for p, c in (files or {}).items()})
            sha = self._commit(repo, tree, [], "Initial commit", _person("Octo", "octo@example"))
            repo.refs[f"heads/{default_branch}"] = sha
            return sha

    def push(self, owner: str, name: str, files: Mapping[str, bytes], branch: str = "main") -> str:
        """A commit on ``branch`` with ``files`` merged in, as another client would push it."""
        with self._lock:
            repo = self._repos[(owner, name)]
            head = repo.refs[f"heads/{branch}"]
            flat = dict(repo.trees[repo.commits[head].tree])
            flat.update({p: self._blob(repo, c) for p, c in files.items()})
            sha = self._commit(
                repo, self._tree(repo, flat), [head], "Someone else", _person("Other", "o@x")
            )
            repo.refs[f"heads/{branch}"] = sha
            return sha

    def file(self, owner: str, name: str, path: str, ref: str = "main") -> bytes | None:
        """The content of ``path`` at ``ref`` (a branch or a commit sha); None if absent."""
        with self._lock:
            repo = self._repos[(owner, name)]
            commit = repo.commits.get(repo.refs.get(f"heads/{ref}", ref))
            if commit is None:
                return None
            sha = repo.trees[commit.tree].get(path)
            return repo.blobs[sha] if sha else None

    def commits(self, owner: str, name: str, branch: str = "main") -> list[dict[str, Any]]:
        """The first-parent history of ``branch``, newest first: sha, message, parents, files."""
        with self._lock:
            repo = self._repos[(owner, name)]
            out = []
            sha: str | None = repo.refs.get(f"heads/{branch}")
            while sha:
                commit = repo.commits[sha]
                out.append(
                    {
                        "sha": sha,
                        "message": commit.message,
                        "parents": list(commit.parents),
                        "author": dict(commit.author),
                        "files": dict(repo.trees[commit.tree]),
                    }
                )
                sha = commit.parents[0] if commit.parents else None
            return out

    def branches(self, owner: str, name: str) -> dict[str, str]:
        with self._lock:
            repo = self._repos[(owner, name)]
            return {r.removeprefix("heads/"): s for r, s in repo.refs.items()}

    def rename_branch(self, owner: str, name: str, old: str, new: str) -> None:
        """Rename a branch as GitHub's UI does (the default branch follows)."""
        with self._lock:
            repo = self._repos[(owner, name)]
            repo.refs[f"heads/{new}"] = repo.refs.pop(f"heads/{old}")
            if repo.default_branch == old:
                repo.default_branch = new

    def pulls(self, owner: str, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._repos[(owner, name)].pulls]

    def register_app(self, app_id: str, public_key_pem: str, installation_id: int) -> None:
        """A GitHub App whose JWTs (signed with the matching private key) are accepted."""
        self._apps[str(app_id)] = (public_key_pem, installation_id)

    # ------------------------------------------------------------------ faults

    def rate_limit_next(self, n: int, retry_after_s: float = 1, status: int = 403) -> None:
        """The next ``n`` requests are answered ``status`` as a rate limit."""
        with self._lock:
            self._rate_limited.extend([(status, retry_after_s)] * n)

    def conflict_next_put(self, n: int) -> None:
        """The next ``n`` contents PUTs get ``409`` as if the file's sha had moved."""
        with self._lock:
            self._conflicts += n

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p in list(self.requests) if method is None or m == method]

    # ------------------------------------------------------------------ object store

    def _blob(self, repo: _Repo, content: bytes) -> str:
        sha = blob_sha(content)
        repo.blobs[sha] = content
        return sha

    def _tree(self, repo: _Repo, flat: Mapping[str, str]) -> str:
        sha = hashlib.sha1(json.dumps(sorted(flat.items())).encode()).hexdigest()
        repo.trees[sha] = dict(flat)
        return sha

    def _commit(
        self, repo: _Repo, tree: str, parents: list[str], message: str, author: dict[str, str]
    ) -> str:
        date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sha = hashlib.sha1(
            json.dumps([tree, parents, message, next(self._counter)]).encode()
        ).hexdigest()
        repo.commits[sha] = _Commit(sha, tree, list(parents), message, author, date)
        return sha

    def _is_ancestor(self, repo: _Repo, ancestor: str, sha: str) -> bool:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            if current in seen or current not in repo.commits:
                continue
            seen.add(current)
            todo.extend(repo.commits[current].parents)
        return False


def _person(name: str, email: str) -> dict[str, str]:
    return {"name": name, "email": email, "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


class _Handler(DoubleHandler):
    gh: GitHubServer
    server_version = "GitHubTestDouble/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path, query = unquote(split.path), parse_qs(split.query)
        raw = self.read_body()
        gh = self.gh
        with gh._lock:
            gh.requests.append((self.command, path))
            limited = gh._rate_limited.pop(0) if gh._rate_limited else None
        try:
            if limited is not None:
                status, after = limited
                reset = int(time.time() + after)
                raise _Error(
                    status,
                    "API rate limit exceeded for user ID 1.",
                    {
                        "Retry-After": str(after),
                        "X-RateLimit-Limit": "5000",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(reset),
                    },
                )
            body = json.loads(raw) if raw else {}
            if m := re.match(r"^/app/installations/(?P<id>\d+)/access_tokens$", path):
                self._send(201, self._installation_token(int(m["id"])))
                return
            self._authenticate()
            self._route(path, query, body)
        except _Error as error:
            self._send(
                error.status,
                {"message": error.message, "documentation_url": "https://docs.github.com/rest"},
                error.headers,
            )
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # noqa: BLE001 - a bug of the double: say so, as a 500
            self._send(500, {"message": f"test double error: {type(exc).__name__}: {exc}"})

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in {"token", "bearer"} or value not in self.gh._tokens:
            raise _Error(401, "Bad credentials")

    def _installation_token(self, installation_id: int) -> dict[str, Any]:
        import jwt

        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise _Error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            app = self.gh._apps.get(str(claims.get("iss")))
            if app is None:
                raise _Error(401, "Integration not found")
            jwt.decode(token, app[0], algorithms=["RS256"], options={"verify_iat": False})
        except jwt.PyJWTError as exc:
            raise _Error(401, f"A JSON web token could not be decoded: {exc}") from None
        if app[1] != installation_id:
            raise _Error(404, "Not Found")
        issued = f"ghs_{hashlib.sha1(f'{installation_id}{time.time_ns()}'.encode()).hexdigest()}"
        self.gh._tokens.add(issued)
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "token": issued,
            "expires_at": expires,
            "permissions": {"contents": "write", "pull_requests": "write"},
            "repository_selection": "all",
        }

    def _route(self, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        m = re.match(_REPO + r"(?P<rest>/.*)?$", path)
        if m is None:
            raise _Error(404, "Not Found")
        gh = self.gh
        with gh._lock:
            repo = gh._repos.get((m["owner"], m["name"]))
            if repo is None:
                raise _Error(404, "Not Found")
            rest = m["rest"] or ""
            method = self.command
            routes: list[tuple[str, str, Any]] = [
                ("GET", r"^$", self._repo_info),
                ("GET", r"^/contents(?:/(?P<p>.*))?$", self._get_contents),
                ("PUT", r"^/contents/(?P<p>.+)$", self._put_contents),
                ("GET", r"^/git/ref/(?P<p>.+)$", self._get_ref),
                ("GET", r"^/git/refs/(?P<p>.+)$", self._get_ref),
                ("PATCH", r"^/git/refs/(?P<p>.+)$", self._patch_ref),
                ("POST", r"^/git/refs$", self._post_ref),
                ("GET", r"^/git/commits/(?P<p>[0-9a-f]+)$", self._get_commit),
                ("POST", r"^/git/commits$", self._post_commit),
                ("GET", r"^/git/trees/(?P<p>[0-9a-f]+)$", self._get_tree),
                ("POST", r"^/git/trees$", self._post_tree),
                ("GET", r"^/git/blobs/(?P<p>[0-9a-f]+)$", self._get_blob),
                ("POST", r"^/git/blobs$", self._post_blob),
                ("GET", r"^/pulls$", self._get_pulls),
                ("POST", r"^/pulls$", self._post_pull),
            ]
            for verb, pattern, action in routes:
                if verb == method and (match := re.match(pattern, rest)):
                    status, answer = action(
                        repo, match["p"] if "(?P<p>" in pattern else None, query, body
                    )
                    break
            else:
                raise _Error(404, "Not Found")
        self._send(status, answer)

    # ------------------------------------------------------------------ JSON of objects

    def _base(self, repo: _Repo) -> str:
        return f"{self.gh.url}/repos/{repo.owner}/{repo.name}"

    def _html(self, repo: _Repo) -> str:
        return f"{self.gh.url}/{repo.owner}/{repo.name}"

    def _commit_json(self, repo: _Repo, sha: str) -> dict[str, Any]:
        c = repo.commits[sha]
        return {
            "sha": sha,
            "node_id": f"C_{sha[:10]}",
            "url": f"{self._base(repo)}/git/commits/{sha}",
            "html_url": f"{self._html(repo)}/commit/{sha}",
            "message": c.message,
            "author": {**c.author, "date": c.date},
            "committer": {**c.author, "date": c.date},
            "tree": {"sha": c.tree, "url": f"{self._base(repo)}/git/trees/{c.tree}"},
            "parents": [
                {"sha": p, "url": f"{self._base(repo)}/git/commits/{p}"} for p in c.parents
            ],
        }

    def _ref_json(self, repo: _Repo, ref: str) -> dict[str, Any]:
        sha = repo.refs[ref]
        return {
            "ref": f"refs/{ref}",
            "node_id": f"REF_{ref}",
            "url": f"{self._base(repo)}/git/refs/{ref}",
            "object": {
                "type": "commit",
                "sha": sha,
                "url": f"{self._base(repo)}/git/commits/{sha}",
            },
        }

    def _file_json(self, repo: _Repo, path: str, sha: str, ref: str) -> dict[str, Any]:
        content = repo.blobs[sha]
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(content),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.encodebytes(content).decode(),
            "sha": sha,
            "url": f"{self._base(repo)}/contents/{path}?ref={ref}",
            "git_url": f"{self._base(repo)}/git/blobs/{sha}",
            "html_url": f"{self._html(repo)}/blob/{ref}/{path}",
            "download_url": None,
        }

    def _pull_json(self, repo: _Repo, pull: dict[str, Any]) -> dict[str, Any]:
        number = pull["number"]
        return {
            "id": number,
            "number": number,
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "url": f"{self._base(repo)}/pulls/{number}",
            "html_url": f"{self._html(repo)}/pull/{number}",
            "head": {
                "ref": pull["head"],
                "label": f"{repo.owner}:{pull['head']}",
                "sha": repo.refs.get(f"heads/{pull['head']}"),
            },
            "base": {
                "ref": pull["base"],
                "label": f"{repo.owner}:{pull['base']}",
                "sha": repo.refs.get(f"heads/{pull['base']}"),
            },
        }

    # ------------------------------------------------------------------ endpoints

    def _repo_info(self, repo: _Repo, _: Any, __: Any, ___: Any) -> tuple[int, Any]:
        return 200, {
            "id": abs(hash((repo.owner, repo.name))) % 10**8,
            "name": repo.name,
            "full_name": f"{repo.owner}/{repo.name}",
            "owner": {"login": repo.owner, "type": "Organization"},
            "private": True,
            "default_branch": repo.default_branch,
            "url": self._base(repo),
            "html_url": self._html(repo),
        }

    def _flat_at(self, repo: _Repo, ref: str) -> dict[str, str]:
        sha = repo.refs.get(f"heads/{ref}", ref)
        commit = repo.commits.get(sha)
        if commit is None:
            raise _Error(404, f"No commit found for the ref {ref}")
        return repo.trees[commit.tree]

    def _get_contents(
        self, repo: _Repo, path: str | None, query: dict[str, list[str]], _: Any
    ) -> tuple[int, Any]:
        ref = (query.get("ref") or [repo.default_branch])[0]
        flat = self._flat_at(repo, ref)
        path = (path or "").strip("/")
        if path in flat:
            return 200, self._file_json(repo, path, flat[path], ref)
        prefix = f"{path}/" if path else ""
        children: dict[str, dict[str, Any]] = {}
        for name, sha in sorted(flat.items()):
            if not name.startswith(prefix):
                continue
            head, _, tail = name[len(prefix) :].partition("/")
            entry_path = prefix + head
            if tail:
                children.setdefault(
                    head, {"type": "dir", "name": head, "path": entry_path, "sha": "", "size": 0}
                )
            else:
                children[head] = {
                    "type": "file",
                    "name": head,
                    "path": entry_path,
                    "sha": sha,
                    "size": len(repo.blobs[sha]),
                }
        if not children and path:
            raise _Error(404, "Not Found")
        for child in children.values():
            child["url"] = f"{self._base(repo)}/contents/{child['path']}?ref={ref}"
        return 200, list(children.values())

    def _put_contents(
        self, repo: _Repo, path: str | None, _: Any, body: dict[str, Any]
    ) -> tuple[int, Any]:
        assert path is not None
        branch = body.get("branch") or repo.default_branch
        ref = f"heads/{branch}"
        if ref not in repo.refs:
            raise _Error(404, f"Branch {branch} not found")
        if not body.get("message") or "content" not in body:
            raise _Error(422, 'Invalid request.\n\n"message" and "content" are required.')
        head = repo.refs[ref]
        flat = dict(repo.trees[repo.commits[head].tree])
        current = flat.get(path)
        if self.gh._conflicts:
            self.gh._conflicts -= 1
            raise _Error(409, f"{path} does not match {body.get('sha') or 'the expected sha'}")
        if current is None and body.get("sha"):
            raise _Error(409, f"{path} does not match {body['sha']}")
        if current is not None and not body.get("sha"):
            raise _Error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
        if current is not None and body["sha"] != current:
            raise _Error(409, f"{path} does not match {body['sha']}")
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in flat:
                raise _Error(422, f"{'/'.join(parts[:i])} is a file, not a directory")
        if any(name.startswith(f"{path}/") for name in flat):
            raise _Error(422, f"{path} is a directory")
        content = base64.b64decode(body["content"])
        flat[path] = self.gh._blob(repo, content)
        author = body.get("author") or _person("Octo", "octo@example")
        sha = self.gh._commit(
            repo, self.gh._tree(repo, flat), [head], body["message"], _person(**_who(author))
        )
        repo.refs[ref] = sha
        return (201 if current is None else 200), {
            "content": self._file_json(repo, path, flat[path], branch),
            "commit": self._commit_json(repo, sha),
        }

    def _get_ref(self, repo: _Repo, ref: str | None, _: Any, __: Any) -> tuple[int, Any]:
        assert ref is not None
        if ref not in repo.refs:
            raise _Error(404, "Not Found")
        return 200, self._ref_json(repo, ref)

    def _patch_ref(
        self, repo: _Repo, ref: str | None, _: Any, body: dict[str, Any]
    ) -> tuple[int, Any]:
        assert ref is not None
        if ref not in repo.refs:
            raise _Error(422, "Reference does not exist")
        sha = body.get("sha")
        if sha not in repo.commits:
            raise _Error(422, "Object does not exist")
        if not body.get("force") and not self.gh._is_ancestor(repo, repo.refs[ref], sha):
            raise _Error(422, "Update is not a fast forward")
        repo.refs[ref] = sha
        return 200, self._ref_json(repo, ref)

    def _post_ref(self, repo: _Repo, _: Any, __: Any, body: dict[str, Any]) -> tuple[int, Any]:
        name = str(body.get("ref") or "")
        if not name.startswith("refs/") or name.count("/") < 2:
            raise _Error(422, "Reference name must start with 'refs/' and have two slashes")
        ref = name.removeprefix("refs/")
        if ref in repo.refs:
            raise _Error(422, "Reference already exists")
        if body.get("sha") not in repo.commits:
            raise _Error(422, "Object does not exist")
        repo.refs[ref] = body["sha"]
        return 201, self._ref_json(repo, ref)

    def _get_commit(self, repo: _Repo, sha: str | None, _: Any, __: Any) -> tuple[int, Any]:
        if sha not in repo.commits:
            raise _Error(404, "Not Found")
        return 200, self._commit_json(repo, sha)

    def _post_commit(self, repo: _Repo, _: Any, __: Any, body: dict[str, Any]) -> tuple[int, Any]:
        tree, parents = body.get("tree"), list(body.get("parents") or [])
        if tree not in repo.trees or any(p not in repo.commits for p in parents):
            raise _Error(422, "Tree or parent SHA does not exist")
        author = body.get("author") or _person("Octo", "octo@example")
        sha = self.gh._commit(repo, tree, parents, str(body.get("message") or ""), _who(author))
        return 201, self._commit_json(repo, sha)

    def _tree_json(self, repo: _Repo, sha: str, recursive: bool) -> dict[str, Any]:
        flat = repo.trees[sha]
        entries: dict[str, dict[str, Any]] = {}
        for path, blob in sorted(flat.items()):
            parts = path.split("/")
            if not recursive and len(parts) > 1:
                entries.setdefault(
                    parts[0], {"path": parts[0], "mode": "040000", "type": "tree", "sha": ""}
                )
                continue
            for i in range(1, len(parts)):
                directory = "/".join(parts[:i])
                entries.setdefault(
                    directory, {"path": directory, "mode": "040000", "type": "tree", "sha": ""}
                )
            entries[path] = {
                "path": path,
                "mode": "100644",
                "type": "blob",
                "sha": blob,
                "size": len(repo.blobs[blob]),
                "url": f"{self._base(repo)}/git/blobs/{blob}",
            }
        for entry in entries.values():
            if entry["type"] == "tree":
                entry["sha"] = hashlib.sha1(f"{sha}:{entry['path']}".encode()).hexdigest()
        return {
            "sha": sha,
            "url": f"{self._base(repo)}/git/trees/{sha}",
            "tree": list(entries.values()),
            "truncated": False,
        }

    def _get_tree(
        self, repo: _Repo, sha: str | None, query: dict[str, list[str]], _: Any
    ) -> tuple[int, Any]:
        if sha not in repo.trees:
            raise _Error(404, "Not Found")
        recursive = bool((query.get("recursive") or [""])[0])
        return 200, self._tree_json(repo, sha, recursive)

    def _post_tree(self, repo: _Repo, _: Any, __: Any, body: dict[str, Any]) -> tuple[int, Any]:
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            raise _Error(422, "base_tree is not a valid tree")
        flat = dict(repo.trees[base]) if base else {}
        for entry in body.get("tree") or []:
            path = entry.get("path")
            if not path or entry.get("type") != "blob":
                raise _Error(422, "Only blob entries with a path are supported by the double")
            if "content" in entry:
                flat[path] = self.gh._blob(repo, str(entry["content"]).encode())
            elif entry.get("sha") is None:
                flat.pop(path, None)
            elif entry["sha"] in repo.blobs:
                flat[path] = entry["sha"]
            else:
                raise _Error(422, f"tree.sha {entry['sha']} is not a valid blob")
        sha = self.gh._tree(repo, flat)
        return 201, self._tree_json(repo, sha, True)

    def _get_blob(self, repo: _Repo, sha: str | None, _: Any, __: Any) -> tuple[int, Any]:
        if sha not in repo.blobs:
            raise _Error(404, "Not Found")
        content = repo.blobs[sha]
        return 200, {
            "sha": sha,
            "size": len(content),
            "encoding": "base64",
            "content": base64.encodebytes(content).decode(),
            "url": f"{self._base(repo)}/git/blobs/{sha}",
        }

    def _post_blob(self, repo: _Repo, _: Any, __: Any, body: dict[str, Any]) -> tuple[int, Any]:
        content = str(body.get("content") or "")
        data = base64.b64decode(content) if body.get("encoding") == "base64" else content.encode()
        sha = self.gh._blob(repo, data)
        return 201, {"sha": sha, "url": f"{self._base(repo)}/git/blobs/{sha}"}

    def _get_pulls(
        self, repo: _Repo, _: Any, query: dict[str, list[str]], __: Any
    ) -> tuple[int, Any]:
        state = (query.get("state") or ["open"])[0]
        head = (query.get("head") or [None])[0]
        base = (query.get("base") or [None])[0]
        found = []
        for pull in repo.pulls:
            if state != "all" and pull["state"] != state:
                continue
            if head is not None and f"{repo.owner}:{pull['head']}" != head:
                continue
            if base is not None and pull["base"] != base:
                continue
            found.append(self._pull_json(repo, pull))
        return 200, found

    def _post_pull(self, repo: _Repo, _: Any, __: Any, body: dict[str, Any]) -> tuple[int, Any]:
        head, base = str(body.get("head") or ""), str(body.get("base") or "")
        head = head.split(":", 1)[-1]
        if f"heads/{head}" not in repo.refs or f"heads/{base}" not in repo.refs:
            raise _Error(422, "Validation Failed")
        if any(
            p["head"] == head and p["base"] == base and p["state"] == "open" for p in repo.pulls
        ):
            raise _Error(422, f"A pull request already exists for {repo.owner}:{head}.")
        pull = {
            "number": len(repo.pulls) + 1,
            "state": "open",
            "title": body.get("title") or head,
            "body": body.get("body"),
            "head": head,
            "base": base,
        }
        repo.pulls.append(pull)
        return 201, self._pull_json(repo, pull)

    # ------------------------------------------------------------------ responses

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send_json(
            status, body, content_type="application/json; charset=utf-8", headers=headers
        )


def _who(identity: Mapping[str, Any]) -> dict[str, str]:
    return {"name": str(identity.get("name") or "?"), "email": str(identity.get("email") or "?")}
