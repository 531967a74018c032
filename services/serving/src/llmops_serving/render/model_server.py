"""The model server container: image, arguments and resources from the DeploymentSpec.

GPU: KServe's Hugging Face runtime with its vLLM backend. ``max_model_len`` is the spec's
``max_input_tokens + max_output_tokens`` (a request may use both), ``max_num_seqs`` is
``max_concurrent_requests`` (vLLM's concurrent sequences per replica), and the model is split
over the replica's GPUs with tensor parallelism. CPU: the same server's plain Hugging Face
backend in float32 (CPUs lack fast half precision), with the same token limit and no
``nvidia.com/gpu`` anywhere, so it schedules on GPU-less nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from llmops_serving.render.request import RenderOptions
from llmops_shared.specs import DeploymentSpec, ImageChoice, JobType, select_serve_image

GPU_RESOURCE: Final = "nvidia.com/gpu"
MODEL_FORMAT: Final = "huggingface"
MODEL_DIR: Final = "/mnt/models"
"""Where KServe's storage initializer puts the model (and where the built-in one does too)."""


@dataclass(frozen=True)
class ModelServer:
    """The container part of a predictor, whichever backend runs it."""

    image: ImageChoice
    args: list[str]
    resources: dict[str, dict[str, str]]


def max_model_len(spec: DeploymentSpec) -> int:
    """Prompt plus generated tokens: the context one request may fill."""
    return spec.runtime.max_input_tokens + spec.runtime.max_output_tokens


def task_for(spec: DeploymentSpec) -> str:
    """The Hugging Face server's task: embeddings for EMBEDDING models, generation otherwise."""
    return "text_embedding" if spec.job_type is JobType.EMBEDDING else "text_generation"


def model_server(spec: DeploymentSpec, *, model_name: str, options: RenderOptions) -> ModelServer:
    """Image, args and resources for ``spec`` on the device the cluster offers."""
    choice = select_serve_image(spec, options.images, options.gpu_available)
    base = [f"--model_name={model_name}", f"--task={task_for(spec)}"]
    if choice.device == "gpu":
        gpus = str(spec.resources.gpus)
        args = [
            *base,
            "--backend=vllm",
            f"--max-model-len={max_model_len(spec)}",
            f"--max-num-seqs={spec.runtime.max_concurrent_requests}",
            f"--tensor-parallel-size={spec.resources.gpus}",
        ]
        amounts = {"cpu": options.cpu, "memory": options.memory, GPU_RESOURCE: gpus}
    else:
        args = [
            *base,
            "--backend=huggingface",
            "--dtype=float32",
            f"--max_length={max_model_len(spec)}",
        ]
        amounts = {"cpu": options.cpu, "memory": options.memory}
    # requests == limits: GPUs cannot be overcommitted, and a model server that is throttled
    # or OOM-killed under load is worse than one that does not schedule.
    return ModelServer(
        image=choice, args=args, resources={"requests": amounts, "limits": dict(amounts)}
    )
