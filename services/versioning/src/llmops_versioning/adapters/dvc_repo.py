"""The git side of the DVC backend's dataset repositories: set-up, DVC config, version tags.

Split out of :mod:`llmops_versioning.adapters.dvc`, which records and restores versions; this
module creates a dataset's repository (git + DVC, branch ``main``), writes its
``.dvc/config.local`` (remote, credentials, cache: never committed) and reads its tags.
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Final

from llmops_versioning.adapters.dvc_commands import Commands
from llmops_versioning.adapters.storage import S3Options, local_path

DATA: Final = "data"
DVC_FILE: Final = "data.dvc"
STAGING: Final = ".llmops-staging"
PREVIOUS: Final = ".llmops-previous"
BRANCH: Final = "main"
COMMIT_PREFIX: Final = "llmops: dataset version "


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


def parse_tag_message(message: str) -> dict[str, str]:
    """The ``key: value`` lines of a version tag's message."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            fields[key.strip()] = value.strip()
    return fields


def tag_ref(tag: str) -> str:
    """The full ref of a version tag: never ambiguous with HEAD, ORIG_HEAD, a branch..."""
    return f"refs/tags/{tag}"


@dataclass(eq=False)
class DatasetRepos:
    """Set-up, configuration and tags of the git+DVC repository of each dataset.

    A service object, not a value: ``eq=False`` keeps identity equality (and hashing). The
    remote URL stays out of ``repr``: it may carry credentials (the worker logs it redacted).
    """

    commands: Commands
    _: KW_ONLY
    remote_name: str
    remote_url: str = field(repr=False)
    cache_dir: Path
    site_cache_dir: Path
    s3: S3Options

    def ensure(self, root: Path, dataset_id: str) -> None:
        """git init + dvc init + a first commit, unless done; remote and cache config always."""
        git = self.commands.git
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".git").is_dir():
            git(root, "init", "--quiet", f"--initial-branch={BRANCH}")
        if self.has_head(root):
            self.configure(root)
            return
        self.commands.dvc(root, "init", "--quiet", "--force")
        exclude = root / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as handle:
            handle.write(f"/{STAGING}\n/{PREVIOUS}\n")
        self.configure(root)
        git(root, "add", "--all")
        self.commands.commit(root, f"llmops: dataset repository {dataset_id}")

    def configure(self, root: Path) -> None:
        """Write ``.dvc/config.local`` (remote, credentials, cache): never committed, 0600."""
        s3 = self.s3
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
                f"    remote = {self.remote_name}",
                f"    site_cache_dir = {_ini(str(self.site_cache_dir))}",
                "    analytics = false",
                "    autostage = false",
                "[cache]",
                f"    dir = {_ini(str(self.cache_dir))}",
                f"['remote \"{self.remote_name}\"']",
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

    def has_head(self, root: Path) -> bool:
        """The repository exists and has its first commit (set-up finished)."""
        if not (root / ".git").is_dir():
            return False
        return bool(
            self.commands.git(root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
        )

    def tag_fields(self, root: Path, tag: str) -> dict[str, str] | None:
        """The fields of a version tag's message; None when there is no such tag."""
        ref = tag_ref(tag)
        if not self.commands.git(root, "rev-parse", "--verify", "--quiet", ref, check=False):
            return None
        message = self.commands.git(root, "for-each-ref", "--format=%(contents)", ref)
        return parse_tag_message(message)

    def commit_of(self, root: Path, tag: str) -> str:
        """The commit a version tag points at."""
        return self.commands.git(root, "rev-parse", "--verify", f"{tag_ref(tag)}^{{commit}}")

    def dvc_file(self, root: Path, tag: str | None) -> str:
        """``data.dvc`` of the working tree (``None``) or at a version tag."""
        if tag is None:
            return (root / DVC_FILE).read_text(encoding="utf-8")
        return self.commands.git(root, "show", f"{tag_ref(tag)}:{DVC_FILE}", "--")
