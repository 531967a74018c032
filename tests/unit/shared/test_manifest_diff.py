"""The manifest diff: exact added / modified / deleted sets with their sizes."""

from __future__ import annotations

import pytest

from llmops_shared.manifest_diff import FileChange, diff_manifests

pytestmark = pytest.mark.unit


def test_diff_classifies_every_path_once() -> None:
    base = [("b.txt", "b1", 2), ("a.txt", "a1", 1), ("gone/c.txt", "c1", 30)]
    target = [("a.txt", "a1", 1), ("b.txt", "b2", 5), ("new/d.txt", "d1", 7)]

    diff = diff_manifests(base, target)

    assert diff.added == [FileChange("new/d.txt", None, 7)]
    assert diff.modified == [FileChange("b.txt", 2, 5)]
    assert diff.deleted == [FileChange("gone/c.txt", 30, None)]
    assert diff.unchanged == 1
    assert (diff.bytes_added, diff.bytes_deleted, diff.size_delta) == (7, 30, 7 - 30 + 3)


def test_same_manifest_has_no_changes() -> None:
    files = [(f"part-{i:05d}", f"{i:032x}", i) for i in range(1000)]
    diff = diff_manifests(files, reversed(files))
    assert (diff.added, diff.modified, diff.deleted, diff.unchanged) == ([], [], [], 1000)


def test_a_path_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        diff_manifests([("a", "1", 1), ("a", "2", 1)], [])
