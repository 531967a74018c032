"""What the ``github`` backend reads from a repository: files, refs, blobs, open pull requests.

Split out of :mod:`llmops_github_sync.adapters.github`, which decides and writes; these reads
turn GitHub's answers into the backend's terms (a ``404`` is "absent", a directory or a symlink
where a values file should be is refused with :class:`SyncRejected`).
"""

from __future__ import annotations

import base64

from github import GithubException
from github.ContentFile import ContentFile
from github.GitRef import GitRef
from github.PullRequest import PullRequest
from github.Repository import Repository

from llmops_github_sync.adapters.github_calls import GithubCalls
from llmops_github_sync.ports import SyncRejected


class RepositoryReads:
    """Reads of the repository ``owner/repo_name`` whose values files live in ``values_path``."""

    def __init__(self, call: GithubCalls, *, owner: str, repo_name: str, values_path: str) -> None:
        self._call = call
        self.owner = owner
        self.repo_name = repo_name
        self.values_path = values_path

    def read(self, repository: Repository, path: str, ref: str) -> tuple[bytes | None, str | None]:
        """The content and blob sha of ``path`` at ``ref``; ``(None, None)`` when absent."""
        try:
            found = self._call(lambda: repository.get_contents(path, ref=ref))
        except GithubException as exc:
            if exc.status == 404:
                return None, None
            raise
        if isinstance(found, list):
            raise SyncRejected(f"{path} is a directory in {self.owner}/{self.repo_name}")
        assert isinstance(found, ContentFile)
        if found.type == "symlink":
            raise SyncRejected(f"{path} is a symlink in {self.owner}/{self.repo_name}")
        return found.decoded_content, found.sha

    def check_directory(self, repository: Repository, ref: str) -> None:
        """Refuse a values path that is a file at ``ref`` (absent is fine: created with files)."""
        if not self.values_path:
            return
        try:
            found = self._call(lambda: repository.get_contents(self.values_path, ref=ref))
        except GithubException as exc:
            if exc.status == 404:
                return  # created with the file
            raise
        if not isinstance(found, list):
            raise SyncRejected(
                f"the values path {self.values_path!r} is a file in "
                f"{self.owner}/{self.repo_name}, not a directory"
            )

    def blob(self, repository: Repository, sha: str) -> bytes:
        blob = self._call(lambda: repository.get_git_blob(sha))
        if blob.encoding == "base64":
            return base64.b64decode(blob.content)
        return str(blob.content).encode()

    def open_pull(self, repository: Repository, head_branch: str, base: str) -> PullRequest | None:
        pulls = self._call(
            lambda: list(
                repository.get_pulls(state="open", head=f"{self.owner}:{head_branch}", base=base)
            )
        )
        return pulls[0] if pulls else None

    def ref(self, repository: Repository, name: str) -> tuple[GitRef, str] | None:
        """The ref and the commit it points at (PyGithub's GitRef is lazy: reading its object
        is the request); None when it does not exist."""

        def read() -> tuple[GitRef, str]:
            ref = repository.get_git_ref(name)
            return ref, str(ref.object.sha)

        try:
            return self._call(read)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise
