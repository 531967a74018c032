"""The DVC cache of the DVC backend: objects, ``.dir`` manifests, and fetching a version.

Split out of :mod:`llmops_versioning.adapters.dvc`: reading what a version holds (its
``(relpath, md5, size)`` manifest) from DVC 3's content-addressed cache, fetching it from the
remote when it is not cached, is a job apart from recording versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import yaml

from llmops_shared.events.payloads.datasets import ManifestEntry
from llmops_versioning.adapters.dvc_commands import Commands
from llmops_versioning.adapters.dvc_repo import DVC_FILE, DatasetRepos
from llmops_versioning.manifest import sorted_manifest
from llmops_versioning.ports import VersioningFailed
from llmops_versioning.safety import check_md5, check_relpath

_FETCH_REV: Final = (
    "import sys\n"
    "from dvc.repo import Repo\n"
    "with Repo(sys.argv[1]) as repo:\n"
    "    repo.fetch(targets=[sys.argv[3]], revs=[sys.argv[2]], workspace=False)\n"
)
"""``dvc fetch`` of one revision (the CLI only fetches the workspace, or all tags/commits)."""


class DvcCache:
    """The DVC cache at ``cache_dir``, shared by the repositories; the remote fills it."""

    def __init__(
        self, commands: Commands, repos: DatasetRepos, *, cache_dir: Path, public_remote: str
    ) -> None:
        self._commands = commands
        self._repos = repos
        self.cache_dir = cache_dir
        self._public_remote = public_remote

    def object_path(self, md5: str) -> Path:
        """Where DVC 3 keeps an object in the cache (``files/md5/ab/cdef...``)."""
        check_md5(md5, what="object")
        return self.cache_dir / "files" / "md5" / md5[:2] / md5[2:]

    @staticmethod
    def dir_md5(dvc_file: str) -> str:
        """The '.dir' md5 a ``data.dvc`` tracks."""
        data: Any = yaml.safe_load(dvc_file)
        try:
            md5 = str(data["outs"][0]["md5"])
        except (KeyError, IndexError, TypeError) as exc:
            raise VersioningFailed(f"{DVC_FILE} has no output md5") from exc
        if not md5.endswith(".dir"):
            raise VersioningFailed(f"{DVC_FILE} does not track a directory ({md5})")
        return check_md5(md5, what=DVC_FILE)

    def tree(self, root: Path, digest: str, *, tag: str | None) -> list[tuple[str, str]]:
        """``(relpath, md5)`` of a '.dir' object, from the cache or fetched from the remote.

        The object may come from the remote: every relpath and md5 is checked before it is
        joined to a directory.
        """
        path = self.object_path(digest)
        if not path.exists() and tag is not None:
            self.fetch_rev(root, tag)
        try:
            entries = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise VersioningFailed(
                f"the manifest {digest} is neither in the cache nor in the remote "
                f"{self._public_remote}"
            ) from exc
        tree = [(str(entry["relpath"]), str(entry["md5"])) for entry in entries]
        for relpath, md5 in tree:
            check_relpath(relpath, what=f"the manifest {digest}: path")
            check_md5(md5, what=f"the manifest {digest} ({relpath})")
        return tree

    def fetch_rev(self, root: Path, tag: str) -> None:
        """``dvc fetch`` of a version: the commit its tag points at, never a bare name."""
        commit = self._repos.commit_of(root, tag)
        self._commands.run(
            [self._commands.python, "-c", _FETCH_REV, str(root), commit, DVC_FILE],
            root,
            what=f"dvc fetch of {tag}",
        )

    def manifest_at(self, root: Path, tag: str) -> list[ManifestEntry]:
        """``(relpath, md5, size)`` of a tagged version; fetched from the remote if needed."""
        digest = self.dir_md5(self._repos.dvc_file(root, tag))
        tree = self.tree(root, digest, tag=tag)
        if any(not self.object_path(md5).exists() for _, md5 in tree):
            self.fetch_rev(root, tag)
        try:
            return sorted_manifest(
                (path, md5, self.object_path(md5).stat().st_size) for path, md5 in tree
            )
        except FileNotFoundError as exc:
            raise VersioningFailed(
                f"version {tag}: object {Path(exc.filename or '').name} is neither in the cache "
                f"nor in the remote {self._public_remote}"
            ) from exc
