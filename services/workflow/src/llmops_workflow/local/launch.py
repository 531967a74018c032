"""How a stage starts: its argv and environment, as the pod would get them.

A pod gets exactly its container's ``env`` (plus what the platform mounts); a local stage also
needs what makes a program work on this machine (``PATH``, ``HOME``, locale, proxies and
certificates, the Hugging Face, AWS and CUDA settings its data and model access use). So a
stage inherits only an allowlist of the worker's environment, never the platform's own
settings and secrets (API keys, database and Redis URLs, webhook secrets, tokens), and
``LOCAL_STAGE_ENV`` names anything else to pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from llmops_workflow.local.plan import LocalPlan, LocalStage, fill_inputs, task_output
from llmops_workflow.ports import WorkflowRejected

STAGE_ENV_NAMES: Final = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM",
        "TMPDIR", "TEMP", "TMP", "LD_LIBRARY_PATH", "VIRTUAL_ENV",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "S3_ENDPOINT_URL", "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    }
)  # fmt: skip
STAGE_ENV_PREFIXES: Final = (
    "LC_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "CUDA_", "NVIDIA_",
    "NCCL_", "AWS_", "FSSPEC_", "MLFLOW_TRACKING_", "MLFLOW_S3_", "XDG_",
)  # fmt: skip
"""What a stage inherits from the worker: locale, paths, network, and the settings of the
libraries the trainer uses to read data and models (credentials for *those* included)."""


def stage_environ(environ: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The part of ``environ`` a stage inherits (the allowlist plus ``passthrough``)."""
    extra = set(passthrough)
    return {
        name: value
        for name, value in environ.items()
        if name in STAGE_ENV_NAMES or name in extra or name.startswith(STAGE_ENV_PREFIXES)
    }


def input_values(outputs: Path, stage: LocalStage, plan: LocalPlan) -> dict[str, str]:
    """The stage's input parameters: literals, or the files earlier stages wrote."""
    values: dict[str, str] = {}
    for name, expression in stage.inputs.items():
        source = task_output(expression)
        if source is None:
            values[name] = expression
            continue
        task, parameter = source
        file_name = plan.stage(task).outputs.get(parameter)
        if file_name is None:
            raise WorkflowRejected(f"task {task} declares no output {parameter!r}")
        try:
            values[name] = (outputs / file_name).read_text().strip()
        except FileNotFoundError:
            raise WorkflowRejected(
                f"{task} did not write its output {parameter!r} ({file_name})"
            ) from None
    return values


def command_line(
    stage: LocalStage,
    plan: LocalPlan,
    *,
    outputs: Path,
    inherited: Mapping[str, str],
    python: str,
) -> tuple[list[str], dict[str, str]]:
    """The stage's argv and environment: the container's, parameters filled, the stage's
    Python environment first on ``PATH`` (so ``python`` and ``torchrun`` are its own)."""
    values = input_values(outputs, stage, plan)
    argv = [fill_inputs(part, values) for part in stage.argv]
    env = {name: fill_inputs(value, values) for name, value in stage.env.items()}
    python_bin = str(Path(python).parent)
    return argv, {
        **inherited,
        **env,
        "LLMOPS_OUTPUTS_DIR": str(outputs),
        "PATH": os.pathsep.join([python_bin, inherited.get("PATH", os.defpath)]),
        "PYTHONUNBUFFERED": "1",
    }
