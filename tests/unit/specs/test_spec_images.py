"""Container image selection and the operator-editable image table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llmops_shared.specs import (
    DeploymentSpec,
    ImageChoice,
    ImageTable,
    JobType,
    ServeTarget,
    TrainJobSpec,
    select_serve_image,
    select_train_image,
)

from unit.specs.specs_seed_examples import (
    EMBEDDING_DEPLOYMENT_CHANGES,
    SEED_DEPLOYMENT_SPEC,
    changed,
    deployment_spec,
    train_spec,
)

pytestmark = pytest.mark.unit

DEFAULTS = ImageTable()


def train(**changes: Any) -> TrainJobSpec:
    return TrainJobSpec.model_validate(train_spec(**changes))


def deployment(**changes: Any) -> DeploymentSpec:
    return DeploymentSpec.model_validate(deployment_spec(**changes))


class TestSelectTrainImage:
    def test_seed_spec_on_a_gpu_cluster(self) -> None:
        assert select_train_image(train(), DEFAULTS, gpu_available=True) == ImageChoice(
            image="ghcr.io/llm-ops/trainer-sft:0.1.0-gpu", device="gpu", fell_back=False
        )

    def test_falls_back_to_cpu_when_the_cluster_has_no_gpu(self) -> None:
        choice = select_train_image(train(), DEFAULTS, gpu_available=False)

        assert (choice.image, choice.device, choice.fell_back) == (
            "ghcr.io/llm-ops/trainer-sft:0.1.0-cpu",
            "cpu",
            True,
        )
        assert choice.reason is not None
        assert "no GPU" in choice.reason

    @pytest.mark.parametrize("gpu_available", [True, False])
    def test_cpu_requested_is_not_a_fallback(self, gpu_available: bool) -> None:
        spec = train(use_gpu=False, resources__gpus=0)

        choice = select_train_image(spec, DEFAULTS, gpu_available)

        assert (choice.device, choice.fell_back, choice.reason) == (
            "cpu",
            False,
            "use_gpu is false",
        )

    @pytest.mark.parametrize(
        ("job_type", "slug"),
        [
            (JobType.PRETRAIN, "pretrain"),
            (JobType.SFT, "sft"),
            (JobType.RAG_TUNING, "rag-tuning"),
            (JobType.RLHF, "rlhf"),
            (JobType.EMBEDDING, "embedding"),
        ],
    )
    def test_default_trainer_per_job_type(self, job_type: JobType, slug: str) -> None:
        images = DEFAULTS.train[job_type]

        assert (images.gpu, images.cpu) == (
            f"ghcr.io/llm-ops/trainer-{slug}:0.1.0-gpu",
            f"ghcr.io/llm-ops/trainer-{slug}:0.1.0-cpu",
        )


class TestSelectServeImage:
    def test_generation_on_gpu_uses_the_gpu_huggingface_server(self) -> None:
        choice = select_serve_image(deployment(), DEFAULTS, gpu_available=True)

        assert (choice.image, choice.device, choice.fell_back) == (
            "kserve/huggingfaceserver:v0.15.2-gpu",
            "gpu",
            False,
        )

    def test_generation_falls_back_to_the_huggingface_server(self) -> None:
        choice = select_serve_image(deployment(), DEFAULTS, gpu_available=False)

        assert (choice.image, choice.device, choice.fell_back) == (
            "kserve/huggingfaceserver:v0.15.2",
            "cpu",
            True,
        )

    def test_rag_target_uses_the_rag_entry(self) -> None:
        table = ImageTable.model_validate({"serve": {"RAG": {"cpu": "tei:cpu"}}})
        spec = DeploymentSpec.model_validate(
            changed(
                SEED_DEPLOYMENT_SPEC,
                {**EMBEDDING_DEPLOYMENT_CHANGES, "use_gpu": False, "resources.gpus": 0},
            )
        )

        assert select_serve_image(spec, table, gpu_available=True).image == "tei:cpu"


class TestImageTable:
    def test_registry_and_tag_move_every_default_trainer(self) -> None:
        table = ImageTable.from_yaml("train_registry: mirror.local/llm/\ntrain_tag: '0.2.0'\n")

        assert table.train[JobType.RLHF].cpu == "mirror.local/llm/trainer-rlhf:0.2.0-cpu"

    def test_partial_override_keeps_the_other_device(self) -> None:
        table = ImageTable.from_yaml("train:\n  SFT:\n    gpu: my/sft:gpu\n")

        assert (table.train[JobType.SFT].gpu, table.train[JobType.SFT].cpu) == (
            "my/sft:gpu",
            "ghcr.io/llm-ops/trainer-sft:0.1.0-cpu",
        )
        assert table.train[JobType.RLHF] == DEFAULTS.train[JobType.RLHF]

    def test_override_is_used_by_selection(self) -> None:
        table = ImageTable.from_yaml("serve:\n  GENERATION: {gpu: vllm/vllm-openai:v0.9.0}\n")

        assert select_serve_image(deployment(), table, True).image == "vllm/vllm-openai:v0.9.0"

    def test_from_yaml_file(self, tmp_path: Path) -> None:
        path = tmp_path / "images.yaml"
        path.write_text("serve:\n  RAG:\n    gpu: text-embeddings-inference:1.7\n")

        table = ImageTable.from_yaml_file(path)

        assert table.serve[ServeTarget.RAG].gpu == "text-embeddings-inference:1.7"

    def test_empty_yaml_gives_the_defaults(self) -> None:
        assert ImageTable.from_yaml("") == DEFAULTS

    def test_dump_round_trips(self) -> None:
        table = ImageTable.from_yaml("train_registry: r.local\ntrain: {SFT: {cpu: x}}\n")

        assert ImageTable.model_validate(table.model_dump(mode="json")) == table

    @pytest.mark.parametrize(
        "text",
        [
            "train: {FINETUNE: {gpu: a, cpu: b}}",
            "serve: {CHAT: {gpu: a, cpu: b}}",
            "serve: {RAG: {gpu: a, tpu: b}}",
            "images: {}",
            "train: {SFT: {gpu: ''}}",
        ],
    )
    def test_mistakes_are_rejected(self, text: str) -> None:
        with pytest.raises(ValidationError):
            ImageTable.from_yaml(text)
