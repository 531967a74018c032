"""Golden files of every rendered manifest: a diff here is a change of what reaches clusters.

``UPDATE_GOLDEN=1 uv run pytest tests/unit/serving/test_golden.py`` rewrites them; review the
diff like code. Otherwise any drift fails with the file to look at (see support/golden.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.golden import golden_tests
from unit.serving.cases import CASES

pytestmark = pytest.mark.unit

(
    test_render_matches_golden_file,
    test_renders_are_deterministic,
    test_no_stray_golden_files,
) = golden_tests(CASES, Path(__file__).parent / "golden")
