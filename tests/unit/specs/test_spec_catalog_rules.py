"""Rules that need catalog facts: base model, dataset, and trained model checks."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_shared.specs import (
    BaseModelFacts,
    DatasetFacts,
    DeploymentSpec,
    JobType,
    ModelFacts,
    TrainJobSpec,
    check_deployment_against_model,
    check_train_job_against_catalog,
)

from unit.specs.specs_seed_examples import (
    PRETRAIN_CHANGES,
    SEED_DEPLOYMENT_SPEC,
    SEED_TRAIN_JOB_SPEC,
    changed,
    deployment_spec,
    train_spec,
)

pytestmark = pytest.mark.unit

LLAMA_BASE = BaseModelFacts("llama-3-8b-pretrain-v1", "llama", 8192)
INSTRUCTIONS = DatasetFacts("enterprise-instruction", "sft_pair", frozenset({"v1", "v2"}))
TRAINED = ModelFacts("llama-3-8b-sft-v1", "llama", 8192, JobType.SFT)


def train(**changes: Any) -> TrainJobSpec:
    return TrainJobSpec.model_validate(train_spec(**changes))


def deployment(**changes: Any) -> DeploymentSpec:
    return DeploymentSpec.model_validate(deployment_spec(**changes))


class TestTrainJobAgainstCatalog:
    def test_seed_spec_passes(self) -> None:
        assert check_train_job_against_catalog(train(), LLAMA_BASE, INSTRUCTIONS) == []

    def test_missing_base_model(self) -> None:
        (violation,) = check_train_job_against_catalog(train(), None)

        assert violation.loc == ("base_model_ref",)
        assert (
            violation.message == "Base model 'llama-3-8b-pretrain-v1' was not found in the catalog"
        )

    def test_pretrain_needs_no_base_model(self) -> None:
        spec = TrainJobSpec.model_validate(changed(SEED_TRAIN_JOB_SPEC, PRETRAIN_CHANGES))

        assert check_train_job_against_catalog(spec, None) == []

    def test_family_must_match_base_model(self) -> None:
        (violation,) = check_train_job_against_catalog(train(model_family="mistral"), LLAMA_BASE)

        assert violation.loc == ("model_family",)
        assert violation.message == (
            "model_family 'mistral' does not match base model 'llama-3-8b-pretrain-v1' "
            "(family 'llama')"
        )

    def test_base_model_of_unsupported_family(self) -> None:
        base = BaseModelFacts("llama-3-8b-pretrain-v1", None, 8192)

        (violation,) = check_train_job_against_catalog(train(), base)

        assert violation.rule == "base_model_family_supported"

    @pytest.mark.parametrize(
        ("job_type", "dataset_type"),
        [("SFT", "sft_pair"), ("RLHF", "rlhf_pair"), ("RAG_TUNING", "rag_qa")],
    )
    def test_max_seq_len_must_fit_base_model(self, job_type: str, dataset_type: str) -> None:
        spec = train(
            job_type=job_type, dataset_ref__type=dataset_type, hyperparams__max_seq_len=4096
        )
        base = BaseModelFacts("llama-3-8b-pretrain-v1", "llama", 2048)

        (violation,) = check_train_job_against_catalog(spec, base)

        assert violation.loc == ("hyperparams", "max_seq_len")
        assert violation.message == (
            f"{job_type} max_seq_len must be <= base_model.max_position_embeddings (4096 > 2048)"
        )

    def test_sft_message_contains_the_seed_text(self) -> None:
        base = BaseModelFacts("llama-3-8b-pretrain-v1", "llama", 512)

        (violation,) = check_train_job_against_catalog(train(), base)

        assert "SFT max_seq_len must be <= base_model.max_position_embeddings" in violation.message

    @pytest.mark.parametrize(("mpe", "ok"), [(4096, True), (4095, False), (None, True)])
    def test_max_seq_len_boundary(self, mpe: int | None, ok: bool) -> None:
        base = BaseModelFacts("llama-3-8b-pretrain-v1", "llama", mpe)

        assert (check_train_job_against_catalog(train(), base) == []) is ok

    def test_unknown_dataset_version(self) -> None:
        (violation,) = check_train_job_against_catalog(
            train(dataset_ref__version="v9"), LLAMA_BASE, INSTRUCTIONS
        )

        assert violation.loc == ("dataset_ref", "version")
        assert violation.message == (
            "Dataset 'enterprise-instruction' version 'v9' was not found in the catalog"
        )

    def test_missing_dataset(self) -> None:
        missing = DatasetFacts("enterprise-instruction", None)

        (violation,) = check_train_job_against_catalog(train(), LLAMA_BASE, missing)

        assert violation.rule == "dataset_version_exists"

    def test_catalog_dataset_type_must_fit_job_type(self) -> None:
        """The spec says sft_pair, but the catalog knows the dataset holds rag_qa records."""
        catalog = DatasetFacts("enterprise-instruction", "rag_qa", frozenset({"v1"}))

        (violation,) = check_train_job_against_catalog(train(), LLAMA_BASE, catalog)

        assert violation.loc == ("dataset_ref", "type")
        assert violation.message == "Dataset type 'rag_qa' is not compatible with job_type 'SFT'"

    def test_several_catalog_violations_together(self) -> None:
        base = BaseModelFacts("llama-3-8b-pretrain-v1", "gemma", 1024)

        violations = check_train_job_against_catalog(
            train(dataset_ref__version="v3"), base, INSTRUCTIONS
        )

        assert [v.rule for v in violations] == [
            "base_model_family_match",
            "max_seq_len_fits_base_model",
            "dataset_version_exists",
        ]


class TestDeploymentAgainstModel:
    def test_seed_spec_passes(self) -> None:
        spec = DeploymentSpec.model_validate(SEED_DEPLOYMENT_SPEC)

        assert check_deployment_against_model(spec, TRAINED) == []

    def test_missing_model(self) -> None:
        (violation,) = check_deployment_against_model(deployment(), None)

        assert violation.loc == ("model_ref",)
        assert violation.message == "Model 'llama-3-8b-sft-v1' was not found in the catalog"

    def test_family_must_match_training_job(self) -> None:
        (violation,) = check_deployment_against_model(deployment(model_family="mistral"), TRAINED)

        assert violation.loc == ("model_family",)
        assert violation.message.startswith("Deployment model_family must match the training job's")
        assert "'mistral' != 'llama'" in violation.message

    def test_job_type_must_match_training_job(self) -> None:
        (violation,) = check_deployment_against_model(deployment(job_type="RLHF"), TRAINED)

        assert violation.loc == ("job_type",)
        assert violation.message == (
            "Deployment job_type must match the training job's ('RLHF' != 'SFT')"
        )

    def test_unknown_training_job_type_is_not_checked(self) -> None:
        model = ModelFacts("llama-3-8b-sft-v1", "llama", 8192)

        assert check_deployment_against_model(deployment(job_type="RLHF"), model) == []

    @pytest.mark.parametrize(("mpe", "ok"), [(5120, True), (5119, False), (None, True)])
    def test_tokens_must_fit_context(self, mpe: int | None, ok: bool) -> None:
        model = ModelFacts("llama-3-8b-sft-v1", "llama", mpe, JobType.SFT)

        violations = check_deployment_against_model(deployment(), model)

        assert (violations == []) is ok
        if not ok:
            assert violations[0].loc == ("runtime", "max_input_tokens")
            assert violations[0].message == (
                "runtime.max_input_tokens + runtime.max_output_tokens must be <= "
                "model.max_position_embeddings (4096 + 1024 = 5120 > 5119)"
            )
