"""Container image selection from an operator-editable table, with GPU -> CPU fallback.

Images are configuration, not code: operators pin versions or mirror registries by overriding
the table (YAML or dict); anything they leave out keeps its default. Training images follow one
naming scheme under a registry prefix, so moving them to a mirror is a one-line change.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmops_shared.specs.deployment import DeploymentSpec
from llmops_shared.specs.training import TrainJobSpec
from llmops_shared.specs.vocab import JobType, ServeTarget

Device = Literal["gpu", "cpu"]

DEFAULT_TRAIN_REGISTRY: Final = "ghcr.io/llm-ops"
DEFAULT_TRAIN_TAG: Final = "0.1.0"
HF_SERVER_GPU_IMAGE: Final = "kserve/huggingfaceserver:v0.15.2-gpu"
HF_SERVER_IMAGE: Final = "kserve/huggingfaceserver:v0.15.2"

DEFAULT_SERVE_IMAGES: Final[Mapping[ServeTarget, Mapping[str, str]]] = {
    # KServe's Hugging Face server: its GPU build runs vLLM (`--backend=vllm`), the CPU build
    # the transformers backend. The InferenceService's `huggingface` runtime runs this image's
    # entrypoint, so a bare vLLM image would not start there. Both serve generators and
    # embedding models (the serving service passes the task), so RAG uses the same images.
    ServeTarget.GENERATION: {"gpu": HF_SERVER_GPU_IMAGE, "cpu": HF_SERVER_IMAGE},
    ServeTarget.RAG: {"gpu": HF_SERVER_GPU_IMAGE, "cpu": HF_SERVER_IMAGE},
}


def default_train_image(registry: str, tag: str, job_type: JobType, device: Device) -> str:
    """The default trainer image name: ``{registry}/trainer-{job}:{tag}-{device}``, e.g.
    ``ghcr.io/llm-ops/trainer-rag-tuning:0.1.0-gpu``."""
    slug = job_type.value.lower().replace("_", "-")
    return f"{registry.rstrip('/')}/trainer-{slug}:{tag}-{device}"


class DeviceImages(BaseModel):
    """The GPU and CPU image for one job type or serve target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str = Field(min_length=1, description="Image used when running on GPUs.")
    cpu: str = Field(min_length=1, description="Image used on CPU (requested, or fallback).")

    def for_device(self, device: Device) -> str:
        """The image for ``device``."""
        return self.gpu if device == "gpu" else self.cpu


class ImageTable(BaseModel):
    """Training images per job type and serving images per serve target, each for GPU and CPU.

    Every entry is filled in after validation: overrides may give a whole entry, one device of
    an entry, or only ``train_registry``/``train_tag`` to move every default trainer image.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_registry: str = Field(
        default=DEFAULT_TRAIN_REGISTRY, min_length=1, description="Prefix of default trainers."
    )
    train_tag: str = Field(
        default=DEFAULT_TRAIN_TAG, min_length=1, description="Version of default trainers."
    )
    train: dict[JobType, DeviceImages] = Field(
        default_factory=dict, description="Trainer images per job type."
    )
    serve: dict[ServeTarget, DeviceImages] = Field(
        default_factory=dict, description="Model server images per serve target."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            return data  # let pydantic report the type error
        registry = data.get("train_registry", DEFAULT_TRAIN_REGISTRY)
        tag = data.get("train_tag", DEFAULT_TRAIN_TAG)
        train_defaults = {
            job: {d: default_train_image(str(registry), str(tag), job, d) for d in ("gpu", "cpu")}
            for job in JobType
        }
        return {
            **data,
            "train": _merge(train_defaults, data.get("train")),
            "serve": _merge(DEFAULT_SERVE_IMAGES, data.get("serve")),
        }

    @classmethod
    def from_yaml(cls, text: str) -> ImageTable:
        """A table from YAML text (empty text gives the defaults)."""
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def from_yaml_file(cls, path: str | Path) -> ImageTable:
        """A table from a YAML file, e.g. a mounted ConfigMap."""
        return cls.from_yaml(Path(path).read_text(encoding="utf-8"))


def _merge(defaults: Mapping[Any, Mapping[str, str]], overrides: Any) -> Any:
    """Per-device merge of ``overrides`` onto ``defaults``; keys are compared as strings so
    YAML keys (``SFT``) meet enum keys. Unknown keys are kept so pydantic rejects them."""
    if not isinstance(overrides, Mapping):
        return overrides if overrides is not None else dict(defaults)
    merged: dict[Any, Any] = {str(key): dict(value) for key, value in defaults.items()}
    for key, value in overrides.items():
        base = merged.get(str(key))
        merged[str(key)] = {**base, **value} if base and isinstance(value, Mapping) else value
    return merged


class ImageChoice(BaseModel):
    """The image to run, on which device, and whether (and why) the GPU request fell back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(description="Container image reference.")
    device: Device = Field(description="gpu or cpu.")
    fell_back: bool = Field(description="True when use_gpu was requested but no GPU exists.")
    reason: str | None = Field(default=None, description="Why the CPU image was chosen.")


def _choose(images: DeviceImages, use_gpu: bool, gpu_available: bool) -> ImageChoice:
    if use_gpu and gpu_available:
        return ImageChoice(image=images.gpu, device="gpu", fell_back=False)
    if use_gpu:
        return ImageChoice(
            image=images.cpu,
            device="cpu",
            fell_back=True,
            reason="use_gpu is true but the cluster has no GPU available; using the CPU image",
        )
    return ImageChoice(image=images.cpu, device="cpu", fell_back=False, reason="use_gpu is false")


def select_train_image(spec: TrainJobSpec, table: ImageTable, gpu_available: bool) -> ImageChoice:
    """The trainer image for ``spec``'s job type; CPU when GPUs are not requested or absent."""
    return _choose(table.train[spec.job_type], spec.use_gpu, gpu_available)


def select_serve_image(spec: DeploymentSpec, table: ImageTable, gpu_available: bool) -> ImageChoice:
    """The model server image for ``spec``'s serve target; CPU when GPUs are not requested or
    absent."""
    return _choose(table.serve[spec.serve_target], spec.use_gpu, gpu_available)
