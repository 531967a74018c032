"""The example files stay valid and equal to the seed's examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops_shared.specs import TrainJobSpec
from llmops_shared.specs.examples import SEED_TRAIN_JOB_SPEC

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_sft_example_is_the_seed_spec_and_validates() -> None:
    body = yaml.safe_load((EXAMPLES / "sft-train-job.yaml").read_text())
    assert body["trainJobSpec"] == SEED_TRAIN_JOB_SPEC
    TrainJobSpec.model_validate(body["trainJobSpec"])
