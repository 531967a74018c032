"""The difference between two dataset-version manifests, computed by one merge walk.

A manifest is the list of ``(path, md5, size)`` triples of a version (see
``llmops_shared.events.payloads.datasets.VersionFacts``). The gateway answers
``GET .../versions/{id}/diff`` with this, from the manifests stored with each version, for the
DVC and the built-in backend alike, and never touches the data itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from llmops_shared.events.payloads.datasets import ManifestEntry


@dataclass(frozen=True, slots=True)
class FileChange:
    """One path that differs. Sizes are None on the side where the file does not exist."""

    path: str
    base_size: int | None
    size: int | None


@dataclass(slots=True)
class ManifestDiff:
    """Added, modified and deleted files (each sorted by path) and their totals."""

    added: list[FileChange] = field(default_factory=list)
    modified: list[FileChange] = field(default_factory=list)
    deleted: list[FileChange] = field(default_factory=list)
    unchanged: int = 0

    @property
    def bytes_added(self) -> int:
        """Bytes of the added files."""
        return sum(change.size or 0 for change in self.added)

    @property
    def bytes_deleted(self) -> int:
        """Bytes of the deleted files."""
        return sum(change.base_size or 0 for change in self.deleted)

    @property
    def size_delta(self) -> int:
        """Total size of the target minus total size of the base."""
        return (
            self.bytes_added
            - self.bytes_deleted
            + sum((change.size or 0) - (change.base_size or 0) for change in self.modified)
        )


def _sorted(entries: Iterable[ManifestEntry]) -> Iterator[ManifestEntry]:
    """The entries in path order, refusing duplicates (a manifest names each file once)."""
    previous: str | None = None
    for entry in sorted(entries, key=lambda item: item[0]):
        if entry[0] == previous:
            raise ValueError(f"manifest lists {entry[0]!r} twice")
        previous = entry[0]
        yield entry


def diff_manifests(base: Iterable[ManifestEntry], target: Iterable[ManifestEntry]) -> ManifestDiff:
    """What changed from ``base`` to ``target``: a file is modified when its md5 differs."""
    diff = ManifestDiff()
    old, new = _sorted(base), _sorted(target)
    left, right = next(old, None), next(new, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left[0] < right[0]):
            assert left is not None
            diff.deleted.append(FileChange(left[0], left[2], None))
            left = next(old, None)
        elif left is None or right[0] < left[0]:
            diff.added.append(FileChange(right[0], None, right[2]))
            right = next(new, None)
        else:
            if left[1] != right[1]:
                diff.modified.append(FileChange(right[0], left[2], right[2]))
            else:
                diff.unchanged += 1
            left, right = next(old, None), next(new, None)
    return diff
