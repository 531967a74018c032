"""The ``huggingface_hub`` cache as the offline source of models: manifests, refs, cached files.

Split out of :mod:`llmops_registry.adapters.huggingface`, which makes the Hub calls; this
module only reads and writes the cache directory.

Online resolve saves the commit's facts (every file with its size, license, gated, private,
last modified) as a small manifest in the cache, ``models--<owner>--<name>/.llmops/
manifests/<sha>.json`` (a directory ``huggingface_hub`` neither writes nor scans), and only then
records ``refs/<revision>``, so an offline worker on that cache knows the whole commit even when
only ``config.json`` of it was fetched.

Offline (``HF_HUB_OFFLINE=true``) nothing is requested: the revision is resolved through the
cache's ``refs/``, ``config.json`` comes from the cached snapshot, the facts from the manifest
(else, for a cache seeded by ``huggingface_hub`` alone, from the files cached), and a download
materialises the store from the cached files; one that needs a file that is not cached fails.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from huggingface_hub.repocard import metadata_load

from llmops_registry.adapters.hub_metadata import (
    COMMIT_RE,
    CONFIG_FILE,
    DEFAULT_BRANCH,
    license_value,
    read_config,
)
from llmops_registry.adapters.store import SnapshotStore, repo_dir_name, safe_relative_path
from llmops_registry.ports import InvalidModel, NotInOfflineCache, RepoFile, ResolvedModel
from llmops_shared.logging import get_logger

MANIFEST_DIR: Final = ".llmops/manifests"
"""Under a repo's cache dir (``models--<owner>--<name>/``): ``<sha>.json`` per resolved commit."""
MANIFEST_VERSION: Final = 1

_log = get_logger(__name__)


class OfflineCache:
    """The ``huggingface_hub`` cache at ``cache_dir``, read and written beside the client."""

    def __init__(self, cache_dir: Path, store: SnapshotStore) -> None:
        self.cache_dir = cache_dir
        self.store = store

    def storage(self, repo_id: str) -> Path:
        return self.cache_dir / f"models--{repo_dir_name(repo_id)}"

    def _manifest_path(self, repo_id: str, sha: str) -> Path:
        return self.storage(repo_id) / MANIFEST_DIR / f"{sha}.json"

    def save_manifest(self, model: ResolvedModel) -> bool:
        """Save the commit's facts beside the cache's ``refs/`` (atomically); False if it could
        not be written (logged: the import goes on, the offline cache just does not learn it)."""
        path = self._manifest_path(model.repo_id, model.revision)
        document = {
            "version": MANIFEST_VERSION,
            "repo_id": model.repo_id,
            "sha": model.revision,
            "files": [{"path": f.path, "size": f.size} for f in model.files],
            "license": model.license,
            "gated": model.gated,
            "private": model.private,
            "last_modified": (
                model.last_modified.isoformat() if model.last_modified is not None else None
            ),
        }
        text = json.dumps(document, indent=1, sort_keys=True)
        try:
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                return True
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            _log.warning(
                "cache_manifest_not_written",
                repo_id=model.repo_id,
                sha=model.revision,
                error=str(exc),
                note="refs/ not written either: an offline worker will not resolve this import",
            )
            return False
        return True

    def _load_manifest(self, repo_id: str, sha: str) -> _Manifest | None:
        """The facts an online resolve saved for ``sha``; None when absent or unreadable."""
        path = self._manifest_path(repo_id, sha)
        if not path.is_file():
            return None
        try:
            return _Manifest.parse(json.loads(path.read_text(encoding="utf-8")), repo_id, sha)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            _log.warning("cache_manifest_ignored", path=str(path), error=str(exc))
            return None

    def remember_ref(self, repo_id: str, revision: str, sha: str) -> None:
        """Record ``revision -> sha`` in the cache's ``refs/`` as huggingface_hub does when it
        downloads by branch name (files are fetched by sha here), so an offline worker on this
        cache resolves the same branch or tag. Best effort; only after the manifest is saved."""
        if COMMIT_RE.match(revision) or not _safe_ref(revision):
            return
        ref = self.storage(repo_id) / "refs" / revision
        try:
            ref.parent.mkdir(parents=True, exist_ok=True)
            if not ref.is_file() or ref.read_text() != sha:
                ref.write_text(sha)
        except OSError as exc:
            _log.warning("cache_ref_not_written", repo_id=repo_id, ref=revision, error=str(exc))

    def resolve(
        self, repo_id: str, revision: str | None, model_url: Callable[[str, str], str]
    ) -> ResolvedModel:
        """Resolve ``revision`` of ``repo_id`` from the cache alone (blocking)."""
        storage = self.storage(repo_id)
        if not (storage / "snapshots").is_dir():
            raise NotInOfflineCache(
                f"repository {repo_id} is not in the offline cache at {self.cache_dir} "
                "(HF_HUB_OFFLINE=true); seed it with huggingface_hub first"
            )
        wanted = revision or DEFAULT_BRANCH
        sha: str | None = None
        if COMMIT_RE.match(wanted) and (storage / "snapshots" / wanted).is_dir():
            sha = wanted
        elif _safe_ref(wanted):
            ref = storage / "refs" / wanted
            if ref.is_file():
                sha = ref.read_text().strip()
        if not sha or not COMMIT_RE.match(sha) or not (storage / "snapshots" / sha).is_dir():
            raise NotInOfflineCache(
                f"revision {wanted} of {repo_id} is not in the offline cache at {self.cache_dir} "
                "(HF_HUB_OFFLINE=true)"
            )
        snapshot = storage / "snapshots" / sha
        config_path = snapshot / CONFIG_FILE
        if not config_path.exists():
            raise InvalidModel(
                f"{CONFIG_FILE} of {repo_id} at {sha} is not in the offline cache at "
                f"{self.cache_dir}"
            )
        config = read_config(config_path, f"{CONFIG_FILE} of {repo_id} at {sha}")
        url = model_url(repo_id, sha)
        manifest = self._load_manifest(repo_id, sha)
        if manifest is not None:
            return ResolvedModel(
                repo_id=repo_id,
                revision=sha,
                url=url,
                config=config,
                files=manifest.files,
                license=manifest.license or _cached_license(snapshot),
                gated=manifest.gated,
                private=manifest.private,
                last_modified=manifest.last_modified,
            )
        # seeded by huggingface_hub alone: the cached files are all that is known
        files = tuple(
            RepoFile(path=path.relative_to(snapshot).as_posix(), size=path.stat().st_size)
            for path in sorted(snapshot.rglob("*"))
            if path.is_file()
        )
        modified = datetime.fromtimestamp(config_path.resolve().stat().st_mtime, UTC)
        return ResolvedModel(
            repo_id=repo_id,
            revision=sha,
            url=url,
            config=config,
            files=files,
            license=_cached_license(snapshot),
            last_modified=modified,
            complete_listing=False,
        )

    def check_cached(self, model: ResolvedModel) -> None:
        """Offline: fail unless every file of ``model`` is in the cache (before staging)."""
        snapshot = self.storage(model.repo_id) / "snapshots" / model.revision
        try:
            missing = self.store.missing(snapshot, [(f.path, f.size) for f in model.files])
        except ValueError as exc:  # an unsafe path in a manifest
            raise InvalidModel(f"repository {model.repo_id}: {exc}") from None
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise NotInOfflineCache(
                f"{model.repo_id} at {model.revision} is only partly in the offline cache at "
                f"{self.cache_dir} (HF_HUB_OFFLINE=true): {len(missing)} of {len(model.files)} "
                f"files missing ({shown}); import it online with download=true, or seed it with "
                "huggingface_hub, first"
            )

    def cached_file(self, repo_id: str, sha: str, path: str) -> Path:
        cached = self.storage(repo_id) / "snapshots" / sha / safe_relative_path(path)
        if not cached.exists():
            raise NotInOfflineCache(
                f"file {path} of {repo_id} at {sha} is not in the offline cache at "
                f"{self.cache_dir} (HF_HUB_OFFLINE=true)"
            )
        return cached


@dataclass(frozen=True)
class _Manifest:
    """The facts of one commit saved by an online resolve (:meth:`OfflineCache.save_manifest`)."""

    files: tuple[RepoFile, ...]
    license: str | None
    gated: bool
    private: bool
    last_modified: datetime | None

    @classmethod
    def parse(cls, data: Any, repo_id: str, sha: str) -> _Manifest:
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise ValueError("not a manifest of a known version")
        if data.get("repo_id") != repo_id or data.get("sha") != sha:
            raise ValueError("manifest of another repository or commit")
        files: list[RepoFile] = []
        for entry in data["files"]:
            path, size = entry["path"], entry.get("size")
            if not isinstance(path, str):
                raise ValueError("a file path is not a string")
            safe_relative_path(path)
            if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                raise ValueError(f"size of {path} is not an integer")
            files.append(RepoFile(path=path, size=size))
        if CONFIG_FILE not in {f.path for f in files}:
            raise ValueError(f"the file list has no {CONFIG_FILE}")
        modified = data.get("last_modified")
        return cls(
            files=tuple(files),
            license=license_value(data.get("license")),
            gated=bool(data.get("gated")),
            private=bool(data.get("private")),
            last_modified=datetime.fromisoformat(modified) if isinstance(modified, str) else None,
        )


def _cached_license(snapshot: Path) -> str | None:
    """The ``license`` of the cached model card's front matter, if any."""
    readme = snapshot / "README.md"
    if not readme.is_file():
        return None
    try:
        card = metadata_load(readme) or {}
    except Exception:  # noqa: BLE001 - a broken model card only costs the license
        card = {}
    return license_value(card.get("license"))


def _safe_ref(revision: str) -> bool:
    """A branch or tag name usable as a path under ``refs/`` (no ``..``, not absolute)."""
    try:
        safe_relative_path(revision)
    except ValueError:
        return False
    return True
