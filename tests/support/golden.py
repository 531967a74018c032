"""Golden files of rendered manifests, one per case: a diff there is a change of what reaches
clusters (or a GitOps repository).

A service's ``test_golden.py`` takes its three tests from :func:`golden_tests`.
``UPDATE_GOLDEN=1`` rewrites the files; review the diff like code. Otherwise any drift fails
with the file to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from llmops_shared.manifest_files import dump_documents, dump_yaml

Case = Callable[[], dict[str, Any]]


def manifest_text(manifest: dict[str, Any]) -> str:
    """A manifest as the manifests backends write it (a ``List`` as one document per item)."""
    if manifest.get("kind") == "List":
        return dump_documents(manifest["items"])
    return dump_yaml(manifest)


def golden_tests(
    cases: Mapping[str, Case], golden: Path
) -> tuple[Callable[[str], None], Callable[[], None], Callable[[], None]]:
    """The golden tests of ``cases`` against ``<golden>/<case>.yaml``: each render matches its
    file, renders are deterministic, and no file is left without a case."""
    update = os.environ.get("UPDATE_GOLDEN") == "1"

    @pytest.mark.parametrize("name", sorted(cases))
    def test_render_matches_golden_file(name: str) -> None:
        path = golden / f"{name}.yaml"
        text = manifest_text(cases[name]())
        if update:
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), (
            f"{path.name} drifted from the renderer; review and re-run with UPDATE_GOLDEN=1"
        )

    def test_renders_are_deterministic() -> None:
        for name, case in cases.items():
            assert manifest_text(case()) == manifest_text(case()), name

    def test_no_stray_golden_files() -> None:
        assert {p.stem for p in golden.glob("*.yaml")} == set(cases)

    return (
        test_render_matches_golden_file,
        test_renders_are_deterministic,
        test_no_stray_golden_files,
    )
