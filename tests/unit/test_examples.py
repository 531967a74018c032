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
    """The seed's job, except the dataset version: a catalog version tag is a semantic version
    (the seed's 'v1' cannot be created), so the example trains on v1.0.0."""
    body = yaml.safe_load((EXAMPLES / "sft-train-job.yaml").read_text())
    seed = {**SEED_TRAIN_JOB_SPEC, "dataset_ref": {**SEED_TRAIN_JOB_SPEC["dataset_ref"],
                                                   "version": "v1.0.0"}}  # fmt: skip
    assert body["trainJobSpec"] == seed
    TrainJobSpec.model_validate(body["trainJobSpec"])
