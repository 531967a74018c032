"""The values file of one MLflow run: render it, and decide what a sync must change in it.

Pure functions (no I/O besides reading the template file): the handler calls :func:`plan_file`
with the file's current bytes (None: absent) and gets a :class:`~llmops_github_sync.ports.Plan`:

* absent -> the full document from the template (``created``);
* a YAML mapping -> only the ``global`` fields the service owns are set, by replacing the text
  of the top-level ``global:`` block alone; every other byte of the file stays as it was, so a
  person's edits elsewhere (comments, other keys, a different ``maxModelLen``) survive
  (``updated``), and a file whose fields are already right is left alone (``unchanged``: no
  commit at all, which is what makes redelivery idempotent);
* anything else (not YAML, not a mapping, empty) -> the full document again (``regenerated``;
  the old content stays in the repository's history, and the commit message says so).

Documents are built structurally: the template is loaded as YAML, keys are set on the loaded
mapping, and the result is dumped with one stable style (:func:`dump`); values are never spliced
into YAML text. The ``vllm.vllm.model`` Helm expression is a plain string value, kept literally.

The facts are :mod:`~llmops_github_sync.values_facts`, the YAML style and guarded load
:mod:`~llmops_github_sync.values_yaml`, the in-place update :mod:`~llmops_github_sync.values_edit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from llmops_github_sync.ports import Action, DependencyUnavailableError, Plan
from llmops_github_sync.values_edit import plan_update
from llmops_github_sync.values_facts import (
    RenderOptions,
    VersionFacts,
    effective_max_model_len,
    global_fields,
)
from llmops_github_sync.values_yaml import dump, parse_documents

HELM_MODEL_PATH: Final = (
    "/mlflow/{{ .Values.global.experimentId }}/{{ .Values.global.runid }}/artifacts/model"
)
HEADER: Final = "# Helm values of MLflow run {run_id}, written by llmops github-sync.\n"


class TemplateError(Exception):
    """The values template cannot be used (not YAML, not a mapping): retrying will not help.
    A template that cannot be *read* (an OSError: a volume not mounted yet, permissions)
    raises ``DependencyUnavailableError`` instead: the consumer pauses until it can be."""


# ---------------------------------------------------------------------------- template


def load_template(path: Path | None) -> dict[str, Any]:
    """The template document (the built-in one when ``path`` is None)."""
    if path is None:
        text = resources.files("llmops_github_sync").joinpath("templates/values.yaml").read_text()
        where = "the built-in values template"
    else:
        where = f"the values template {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DependencyUnavailableError(
                f"{where} cannot be read: {exc.strerror or exc}"
            ) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{where} does not parse as YAML: {_one_line(exc)}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{where} is not a YAML mapping")
    vllm = document.get("vllm", {})
    if not isinstance(vllm, dict) or not isinstance(vllm.get("vllm", {}), dict):
        raise TemplateError(f"{where}: vllm and vllm.vllm must be mappings")
    if not isinstance(document.get("global", {}), dict):
        raise TemplateError(f"{where}: global must be a mapping")
    return document


def render(
    template: Mapping[str, Any], facts: VersionFacts, options: RenderOptions
) -> tuple[dict[str, Any], int, bool]:
    """The full document for ``facts``: (document, maxModelLen, capped)."""
    document: dict[str, Any] = _copy(template)
    document["global"] = {**document.get("global", {}), **global_fields(facts)}
    vllm_outer = document.setdefault("vllm", {})
    vllm = vllm_outer.setdefault("vllm", {})
    max_len, capped = effective_max_model_len(options, facts)
    vllm.setdefault("model", HELM_MODEL_PATH)
    vllm["maxModelLen"] = max_len
    vllm["gpuMemoryUtilization"] = options.gpu_memory_utilization
    vllm["trust_remote_code"] = options.trust_remote_code
    vllm["served_model_name"] = options.served_model_name or facts.model_name
    return document, max_len, capped


def plan_file(
    path: str,
    current: bytes | None,
    *,
    template: Mapping[str, Any],
    facts: VersionFacts,
    options: RenderOptions,
) -> Plan:
    """What the file at ``path`` must become for ``facts`` (see the module docstring).

    Raises :class:`~llmops_github_sync.ports.SyncRejected` for a file the service must neither
    edit nor regenerate: more than
    :data:`~llmops_github_sync.values_yaml.MAX_ALIASES` YAML aliases, or several documents of
    which the first is not a mapping (regenerating would destroy the others)."""
    subject = f"{facts.model_name}/{facts.version}"
    trailer = f"\n\nModel-Version: {subject}\nRun-Id: {facts.run_id}\n"
    if current is not None:
        parsed = parse_documents(path, current)
        if parsed is not None:
            return plan_update(path, parsed, facts, subject, trailer)
    document, max_len, capped = render(template, facts, options)
    content = (HEADER.format(run_id=facts.run_id) + dump(document)).encode()
    note = ""
    if capped:
        note = (
            f"\n\nmaxModelLen capped to {max_len}: the model's max_position_embeddings is "
            f"{facts.max_position_embeddings}, below VLLM_MAX_MODEL_LEN {options.max_model_len}."
        )
    if current is None:
        message = f"github-sync: add {path} for {subject}{note}{trailer}"
        action: Action = "created"
    else:
        message = (
            f"github-sync: regenerate {path} for {subject}\n\nThe previous content was not a "
            f"YAML mapping; it stays in this file's history.{note}{trailer}"
        )
        action = "regenerated"
    return Plan(
        path=path,
        action=action,
        content=content,
        message=message,
        max_model_len=max_len,
        capped=capped,
        note=note.strip() or None,
    )


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
