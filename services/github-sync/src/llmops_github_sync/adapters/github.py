"""The ``github`` backend: PyGithub (2.x) on github.com or GitHub Enterprise (``base_url``).

* One file, push mode: Contents API ``GET`` (content + blob sha), then ``PUT`` with that sha; a
  ``409`` (the sha moved) or a ``422`` on create (the file appeared meanwhile) means someone else
  wrote it: read again, decide again, retry (bounded).
* A batch (reconcile) and every pull-request-mode write: the Git Data API, one commit for all
  files: read the ref, its commit and tree, ``POST git/trees`` with ``base_tree`` and the changed
  files (inline ``content``: one request instead of a blob per file, which matters against
  GitHub's secondary rate limits on content-creating requests), ``POST git/commits``, then
  ``PATCH`` the ref without force; a ``422`` (not a fast-forward: the ref moved) starts over.
* Pull-request mode: the change goes to ``llmops/values-<run_id>`` (``llmops/values-reconcile``
  for a batch), branched from the target branch, and an open pull request is reused or opened.
  A branch left over from a merged or closed pull request is first reset to the target branch.

The target branch is ``branch`` when configured, else the repository's default branch, read
again for every sync and on every ping (never cached: a default branch renamed on GitHub is
followed); a write answered ``404`` re-reads it and tries again. A recursive tree GitHub
answers ``truncated`` (a huge repository) is not trusted to say a file is absent: the batch's
files are then read through the Contents API. Symlinks (mode ``120000``) are refused.

Rate limits: PyGithub's own retry is turned off (``retry=None``): with its defaults a 403 with
``Retry-After`` or a primary rate limit sleeps for as long as the server says, with no bound,
inside a worker thread. Here every call goes through
:class:`~llmops_github_sync.adapters.github_calls.GithubCalls`, which honours ``Retry-After``
(else ``X-RateLimit-Reset``) up to ``max_rate_limit_wait_s`` in total and then raises
:class:`DependencyUnavailableError`: the consumer pauses, nothing is dead-lettered. ``401``/
``403`` (credentials or permissions), ``5xx`` after three tries and connection errors raise it
too, with a log line that names the cause (never the token). Reads are
:mod:`~llmops_github_sync.adapters.github_reads`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement
from github.GitCommit import GitCommit
from github.Repository import Repository
from pydantic import JsonValue, SecretStr

from llmops_github_sync.adapters.github_calls import GithubCalls
from llmops_github_sync.adapters.github_reads import RepositoryReads
from llmops_github_sync.ports import (
    BatchMessage,
    Decide,
    DecideMany,
    Plan,
    SyncConflict,
    SyncRejected,
    SyncResult,
    check_relative_path,
    valid_run_id,
)
from llmops_shared.logging import get_logger

_log = get_logger(__name__)


def token_auth(token: SecretStr) -> Auth.Auth:
    return Auth.Token(token.get_secret_value())


def app_auth(app_id: str, private_key: str, installation_id: int) -> Auth.Auth:
    """GitHub App installation auth: PyGithub mints the JWT and the installation token."""
    return Auth.AppAuth(app_id, private_key).get_installation_auth(installation_id)


class GithubRepository:
    """Values files in one GitHub repository."""

    name = "github"

    def __init__(
        self,
        *,
        base_url: str,
        auth: Auth.Auth,
        owner: str,
        repo: str,
        branch: str | None = None,
        values_path: str = "",
        mode: str = "push",
        timeout_s: int = 15,
        seconds_between_writes: float = 1.0,
        max_rate_limit_wait_s: float = 60.0,
        conflict_retries: int = 5,
        author: tuple[str, str] | None = None,
        auth_kind: str = "token",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._github = Github(
            base_url=base_url,
            auth=auth,
            timeout=timeout_s,
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=seconds_between_writes or None,
        )
        self.base_url = base_url
        self.owner = owner
        self.repo_name = repo
        self.values_path = values_path.strip("/")
        self.mode = mode
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.conflict_retries = conflict_retries
        self.auth_kind = auth_kind
        self._author = InputGitAuthor(*author) if author else None
        self._branch = branch  # configured: fixed
        self._default_branch: str | None = None  # last read, for describe() only
        self._repo: Repository | None = None
        self._lock = threading.Lock()
        self._call = GithubCalls(
            base_url=base_url,
            full_name=f"{owner}/{repo}",
            auth_kind=auth_kind,
            max_rate_limit_wait_s=max_rate_limit_wait_s,
            sleep=sleep,
        )
        self._reads = RepositoryReads(
            self._call, owner=owner, repo_name=repo, values_path=self.values_path
        )

    # ------------------------------------------------------------------ describe / ping

    def describe(self) -> dict[str, JsonValue]:
        return {
            "backend": self.name,
            "repository": f"{self.owner}/{self.repo_name}",
            "base_url": self.base_url,
            "branch": self._branch or self._default_branch,
            "values_path": self.values_path,
            "mode": self.mode,
            "auth": self.auth_kind,
        }

    async def ping(self) -> None:
        await asyncio.to_thread(self._ping)

    def _ping(self) -> None:
        with self._lock:
            self._repo = None  # a fresh read: the repository may have moved or been renamed
        self.branch(refresh=False)

    # ------------------------------------------------------------------ public API

    async def sync_file(self, path: str, decide: Decide, *, run_id: str) -> SyncResult:
        check_relative_path(path)
        if self.mode == "pull_request":
            if not valid_run_id(run_id):
                raise SyncRejected(f"run id {run_id!r} cannot name a branch")
            return await asyncio.to_thread(
                self._pull_request_sync,
                f"llmops/values-{run_id}",
                [path],
                lambda _p, current: decide(current),
                lambda plans: plans[0].message,
                f"llmops: values of run {run_id}",
            )
        return await asyncio.to_thread(self._contents_sync, path, decide)

    async def sync_files(
        self, paths: Sequence[str], decide: DecideMany, message: BatchMessage
    ) -> SyncResult:
        for path in paths:
            check_relative_path(path)
        if self.mode == "pull_request":
            return await asyncio.to_thread(
                self._pull_request_sync,
                "llmops/values-reconcile",
                list(paths),
                decide,
                message,
                "llmops: reconcile values files with MLflow",
            )
        plans, sha = await asyncio.to_thread(
            self._default_data_commit, list(paths), decide, message
        )
        return SyncResult(plans, sha, None)

    def _default_data_commit(
        self, paths: list[str], decide: DecideMany, message: BatchMessage
    ) -> tuple[list[Plan], str | None]:
        branch = self.branch()
        try:
            return self._data_commit(branch, paths, decide, message)
        except SyncRejected:
            # the default branch may have been renamed since it was read: read it again
            if self._branch is not None or self.branch() == branch:
                raise
            return self._data_commit(self.branch(), paths, decide, message)

    # ------------------------------------------------------------------ repository facts

    def repository(self) -> Repository:
        with self._lock:
            if self._repo is None:
                self._repo = self._call(
                    lambda: self._github.get_repo(f"{self.owner}/{self.repo_name}")
                )
            return self._repo

    def branch(self, *, refresh: bool = True) -> str:
        """The configured branch, else the repository's default branch, read now (never
        cached: it can be renamed at any time)."""
        if self._branch is not None:
            return self._branch
        if refresh:
            with self._lock:
                self._repo = None
        repository = self.repository()
        self._default_branch = self._call(lambda: repository.default_branch)
        return self._default_branch

    # ------------------------------------------------------------------ contents API

    def _contents_sync(self, path: str, decide: Decide) -> SyncResult:
        branch = self.branch()
        repository = self.repository()
        for _ in range(self.conflict_retries):
            current, sha = self._reads.read(repository, path, branch)
            plan = decide(current)
            if plan.content is None:
                return SyncResult([plan])
            if current is None:
                self._reads.check_directory(repository, branch)
            kwargs: dict[str, Any] = {"branch": branch}
            if self._author is not None:
                kwargs["author"] = self._author
            try:
                if sha is None:
                    result = self._call(
                        repository.create_file, path, plan.message, plan.content, **kwargs
                    )
                else:
                    result = self._call(
                        repository.update_file, path, plan.message, plan.content, sha, **kwargs
                    )
            except GithubException as exc:
                if exc.status in (409, 422):
                    _log.info("github_write_conflict", path=path, status=exc.status)
                    continue
                if exc.status == 404 and self._branch is None:
                    # the default branch was renamed since it was read: read it again
                    _log.info("github_branch_gone", branch=branch)
                    branch = self.branch()
                    repository = self.repository()
                    continue
                raise
            commit = result["commit"]
            return SyncResult([plan], str(commit.sha), None)
        raise SyncConflict(
            f"{path} kept changing on {branch} through {self.conflict_retries} tries"
        )

    # ------------------------------------------------------------------ git data API

    def _data_commit(
        self, branch: str, paths: list[str], decide: DecideMany, message: BatchMessage
    ) -> tuple[list[Plan], str | None]:
        repository = self.repository()
        for _ in range(self.conflict_retries):
            found = self._reads.ref(repository, f"heads/{branch}")
            if found is None:
                raise SyncRejected(
                    f"branch {branch} does not exist in {self.owner}/{self.repo_name}"
                )
            ref, head_sha = found
            head: GitCommit = self._call(repository.get_git_commit, head_sha)
            tree = self._call(repository.get_git_tree, head.tree.sha, recursive=True)
            plans = []
            if tree.truncated:
                # a huge tree: absent from the listing does not mean absent from the branch
                _log.info("github_tree_truncated", branch=branch, files=len(paths))
                self._reads.check_directory(repository, head_sha)
                for path in paths:
                    plans.append(decide(path, self._reads.read(repository, path, head_sha)[0]))
            else:
                blobs = {e.path: e.sha for e in tree.tree if e.type == "blob"}
                kinds = {e.path: e.type for e in tree.tree}
                links = {e.path for e in tree.tree if e.mode == "120000"}
                if self.values_path and kinds.get(self.values_path, "tree") != "tree":
                    raise SyncRejected(
                        f"the values path {self.values_path!r} is a file in "
                        f"{self.owner}/{self.repo_name}, not a directory"
                    )
                for path in paths:
                    if kinds.get(path) == "tree":
                        raise SyncRejected(
                            f"{path} is a directory in {self.owner}/{self.repo_name}"
                        )
                    if path in links:
                        raise SyncRejected(f"{path} is a symlink in {self.owner}/{self.repo_name}")
                    current = self._reads.blob(repository, blobs[path]) if path in blobs else None
                    plans.append(decide(path, current))
            changed = [p for p in plans if p.content is not None]
            if not changed:
                return plans, None
            elements = [
                InputGitTreeElement(
                    p.path, "100644", "blob", content=(p.content or b"").decode("utf-8")
                )
                for p in changed
            ]
            new_tree = self._call(repository.create_git_tree, elements, base_tree=head.tree)
            kwargs: dict[str, Any] = {}
            if self._author is not None:
                kwargs["author"] = self._author
            commit = self._call(
                repository.create_git_commit, message(changed), new_tree, [head], **kwargs
            )
            try:
                self._call(ref.edit, commit.sha, force=False)
            except GithubException as exc:
                if exc.status in (409, 422):
                    _log.info("github_ref_moved", branch=branch, status=exc.status)
                    continue
                raise
            return plans, str(commit.sha)
        raise SyncConflict(f"{branch} kept moving through {self.conflict_retries} tries")

    # ------------------------------------------------------------------ pull requests

    def _pull_request_sync(
        self,
        head_branch: str,
        paths: list[str],
        decide: DecideMany,
        message: BatchMessage,
        title: str,
    ) -> SyncResult:
        repository, base = self.repository(), self.branch()
        base_found = self._reads.ref(repository, f"heads/{base}")
        if base_found is None:
            raise SyncRejected(f"branch {base} does not exist in {self.owner}/{self.repo_name}")
        base_sha = base_found[1]
        pull = self._reads.open_pull(repository, head_branch, base)
        # already right on the target branch: nothing to propose
        plans, _ = self._evaluate(repository, base, paths, decide)
        if not any(p.changes for p in plans) and pull is None:
            return SyncResult(plans)
        branch_found = self._reads.ref(repository, f"heads/{head_branch}")
        if branch_found is None:
            try:
                self._call(repository.create_git_ref, f"refs/heads/{head_branch}", base_sha)
            except GithubException as exc:
                if exc.status != 422:  # created meanwhile by another worker: use it
                    raise
        elif pull is None and branch_found[1] != base_sha:
            # left over from a merged or closed pull request: start again from the target
            self._call(branch_found[0].edit, base_sha, force=True)
        plans, sha = self._data_commit(head_branch, paths, decide, message)
        if pull is None:
            body = "Opened by llmops github-sync.\n\n" + "\n".join(
                f"- `{p.path}`: {p.action}" for p in plans
            )
            try:
                pull = self._call(
                    repository.create_pull, base=base, head=head_branch, title=title, body=body
                )
            except GithubException as exc:
                pull = self._reads.open_pull(repository, head_branch, base)
                if exc.status != 422 or pull is None:
                    raise
        return SyncResult(plans, sha, pull.html_url)

    def _evaluate(
        self, repository: Repository, ref: str, paths: list[str], decide: DecideMany
    ) -> tuple[list[Plan], None]:
        return [decide(path, self._reads.read(repository, path, ref)[0]) for path in paths], None
