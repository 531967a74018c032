"""The trainer keeps its own copy of the platform's vocabulary (its image must not carry
llmops_shared): these tests fail when the two drift apart."""

from __future__ import annotations

import pytest

from llmops_shared.specs import DatasetType as SharedDatasetType
from llmops_shared.specs import JobType as SharedJobType
from llmops_shared.specs import supported_families
from llmops_shared.specs.families import MODEL_FAMILIES
from llmops_shared.specs.vocab import DATASET_TYPE_FOR_JOB as SHARED_DATASET_TYPE_FOR_JOB
from llmops_shared.specs.vocab import Precision as SharedPrecision
from llmops_shared.specs.vocab import SaveFormat as SharedSaveFormat
from llmops_shared.specs.vocab import TrainMethod
from llmops_trainer.vocab import (
    DATASET_TYPE_FOR_JOB,
    OBJECTIVE_FOR_JOB,
    SUITES_FOR_JOB,
    DatasetType,
    JobType,
    Method,
    ModelFamily,
    Objective,
    Precision,
    SaveFormat,
    Suite,
    family_supports,
)
from llmops_workflow.render.steps import EVAL_SUITE, OBJECTIVE

pytestmark = pytest.mark.unit


def test_job_types_match() -> None:
    assert [j.value for j in JobType] == [j.value for j in SharedJobType]


def test_dataset_types_match() -> None:
    assert [d.value for d in DatasetType] == [d.value for d in SharedDatasetType]


def test_families_match_the_whitelist() -> None:
    assert tuple(f.value for f in ModelFamily) == supported_families()


def test_family_job_types_match_the_whitelist() -> None:
    for family in ModelFamily:
        for job_type in JobType:
            shared = MODEL_FAMILIES[family.value].supports(SharedJobType(job_type.value))
            assert family_supports(family, job_type) == shared, (family, job_type)


def test_dataset_type_per_job_type_matches() -> None:
    assert {j.value: d.value for j, d in DATASET_TYPE_FOR_JOB.items()} == {
        j.value: d.value for j, d in SHARED_DATASET_TYPE_FOR_JOB.items()
    }


def test_methods_and_save_formats_match() -> None:
    assert [m.value for m in Method] == [m.value for m in TrainMethod]
    assert [s.value for s in SaveFormat] == [s.value for s in SharedSaveFormat]


def test_precisions_cover_the_spec_and_the_cpu_fallback() -> None:
    # specs ask for fp16/bf16; the workflow renders fp32 for CPU images
    assert {p.value for p in SharedPrecision} | {"fp32"} == {p.value for p in Precision}


def test_objectives_and_suites_match_what_the_workflow_renders() -> None:
    assert {j.value: o.value for j, o in OBJECTIVE_FOR_JOB.items()} == {
        j.value: o for j, o in OBJECTIVE.items()
    }
    assert {o.value for o in Objective} == set(OBJECTIVE.values())
    for job_type, suite in EVAL_SUITE.items():
        assert Suite(suite) in SUITES_FOR_JOB[JobType(job_type.value)]
    assert {s.value for s in Suite} == set(EVAL_SUITE.values())
