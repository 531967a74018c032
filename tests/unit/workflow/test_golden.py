"""Golden files of every rendered pipeline: a diff here is a change of what reaches clusters.

``UPDATE_GOLDEN=1 uv run pytest tests/unit/workflow/test_golden.py`` rewrites them; review the
diff like code. Otherwise any drift fails with the file to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmops_shared.manifest_files import dump_documents, dump_yaml

from unit.workflow.cases import CASES

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _text(name: str) -> str:
    manifest = CASES[name]()
    if manifest.get("kind") == "List":
        return dump_documents(manifest["items"])
    return dump_yaml(manifest)


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = _text(name)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} drifted from the renderer; review and re-run with UPDATE_GOLDEN=1"
    )


def test_renders_are_deterministic() -> None:
    for name in CASES:
        assert _text(name) == _text(name), name


def test_no_stray_golden_files() -> None:
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == set(CASES)
