"""What this machine can do: CUDA or not, which precision, whether qlora is possible.

Decided before any model is loaded, so a job that cannot run here is refused in a second
(exit 2) instead of after downloading a base model.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmops_trainer.errors import Refused
from llmops_trainer.vocab import Method, Precision, Quantization

if TYPE_CHECKING:
    import torch

_log = logging.getLogger(__name__)


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def bitsandbytes_installed() -> bool:
    """Whether the ``gpu`` extra (bitsandbytes) is installed, without importing it."""
    return importlib.util.find_spec("bitsandbytes") is not None


def check_method(method: Method, quantization: Quantization | None, *, cuda: bool) -> None:
    """Refuse qlora where it cannot run, and a quantization without qlora."""
    if quantization is not None and method is not Method.QLORA:
        raise Refused(f"--quantization={quantization.value} applies to method qlora only")
    if method is not Method.QLORA:
        return
    if not cuda:
        reason = "this machine has no CUDA device"
    elif not bitsandbytes_installed():
        reason = "bitsandbytes is not installed (the trainer's gpu extra)"
    else:
        return
    raise Refused(
        f"qlora needs a CUDA GPU and bitsandbytes (4-bit nf4): {reason}; train with method "
        "lora, or run on a GPU image"
    )


@dataclass(frozen=True)
class Compute:
    """Where and in which precision this process trains."""

    cuda: bool
    requested: Precision
    precision: Precision

    @property
    def device(self) -> str:
        return "cuda" if self.cuda else "cpu"

    @property
    def bf16(self) -> bool:
        return self.precision is Precision.BF16

    @property
    def fp16(self) -> bool:
        return self.precision is Precision.FP16

    def dtype(self) -> torch.dtype:
        """The dtype of weights that are not trained in full precision (frozen base weights
        under LoRA, the compute dtype of 4-bit layers, merged adapters)."""
        import torch

        return {
            Precision.BF16: torch.bfloat16,
            Precision.FP16: torch.float16,
            Precision.FP32: torch.float32,
        }[self.precision]


def choose_compute(requested: Precision, *, cuda: bool) -> Compute:
    """The precision to train in: fp16/bf16 need a GPU (on CPU: fp32, said in one log line);
    a GPU without bf16 trains a bf16 request in fp16."""
    precision = requested
    if requested is not Precision.FP32 and not cuda:
        _log.warning("precision %s requested but no CUDA device: training in fp32", requested.value)
        precision = Precision.FP32
    elif requested is Precision.BF16 and not _bf16_supported():
        _log.warning("precision bf16 requested but this GPU has no bf16: training in fp16")
        precision = Precision.FP16
    return Compute(cuda=cuda, requested=requested, precision=precision)


def _bf16_supported() -> bool:
    import torch

    return bool(torch.cuda.is_bf16_supported())
