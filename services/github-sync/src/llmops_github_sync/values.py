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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from llmops_github_sync.ports import Action, Plan

HELM_MODEL_PATH: Final = (
    "/mlflow/{{ .Values.global.experimentId }}/{{ .Values.global.runid }}/artifacts/model"
)
MAX_POSITION_TAGS: Final = ("max_position_embeddings", "llmops.max_position_embeddings")
HEADER: Final = "# Helm values of MLflow run {run_id}, written by llmops github-sync.\n"
_GLOBAL_LINE = re.compile(r"^global[ \t]*:")
_TOP_LEVEL = re.compile(r"^[^\s#]")


class TemplateError(Exception):
    """The values template cannot be used (missing, not YAML, not a mapping)."""


@dataclass(frozen=True)
class VersionFacts:
    """What the values file says about one model version."""

    model_name: str
    version: str
    run_id: str
    experiment_id: str
    created_at: datetime
    max_position_embeddings: int | None = None


@dataclass(frozen=True)
class RenderOptions:
    """The vLLM settings of a full document."""

    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.9
    trust_remote_code: bool = True
    served_model_name: str | None = None


def max_position_embeddings(tags: Mapping[str, str]) -> int | None:
    """The model's context length from its version tags, when one is given and valid."""
    for key in MAX_POSITION_TAGS:
        raw = tags.get(key)
        if raw is None:
            continue
        try:
            value = int(str(raw).strip())
        except ValueError:
            continue
        if value > 0:
            return value
    return None


def global_fields(facts: VersionFacts) -> dict[str, Any]:
    """The ``global`` keys the service owns (the seed's five)."""
    return {
        "experimentId": str(facts.experiment_id),
        "runid": facts.run_id,
        "timestamp": int(facts.created_at.astimezone(UTC).strftime("%Y%m%d")),
        "modelName": facts.model_name,
        "modelVersion": str(facts.version),
    }


def effective_max_model_len(options: RenderOptions, facts: VersionFacts) -> tuple[int, bool]:
    """``VLLM_MAX_MODEL_LEN`` capped to the model's max_position_embeddings; (value, capped)."""
    limit = facts.max_position_embeddings
    if limit is not None and options.max_model_len > limit:
        return limit, True
    return options.max_model_len, False


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
            raise TemplateError(f"{where} cannot be read: {exc.strerror or exc}") from exc
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


# ---------------------------------------------------------------------------- dumping


class _StableDumper(yaml.SafeDumper):
    """Block style, keys in insertion order, strings that would read as something else (a
    number, a boolean) or hold a Helm expression in double quotes, as the seed writes them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if "{{" in value or (
        value
        and dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        != "tag:yaml.org,2002:str"
    ):
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_StableDumper.add_representer(str, _represent_str)


def dump(document: Mapping[str, Any]) -> str:
    """One stable YAML style for everything the service writes."""
    return yaml.dump(
        document,
        Dumper=_StableDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        indent=2,
    )


# ---------------------------------------------------------------------------- planning


def plan_file(
    path: str,
    current: bytes | None,
    *,
    template: Mapping[str, Any],
    facts: VersionFacts,
    options: RenderOptions,
) -> Plan:
    """What the file at ``path`` must become for ``facts`` (see the module docstring)."""
    subject = f"{facts.model_name}/{facts.version}"
    trailer = f"\n\nModel-Version: {subject}\nRun-Id: {facts.run_id}\n"
    if current is not None:
        existing = _parse_mapping(current)
        if existing is not None:
            return _plan_update(path, current, existing, facts, subject, trailer)
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


def _plan_update(
    path: str,
    current: bytes,
    existing: dict[str, Any],
    facts: VersionFacts,
    subject: str,
    trailer: str,
) -> Plan:
    fields = global_fields(facts)
    old_global = existing.get("global")
    file_len = _file_max_model_len(existing)
    if all(_same(old_global, k, v) for k, v in fields.items()):
        return Plan(path=path, action="unchanged", content=None, max_model_len=file_len)
    merged = {**(old_global if isinstance(old_global, dict) else {}), **fields}
    text = current.decode("utf-8")
    new_text = _replace_global_block(text, merged)
    expected = {**existing, "global": merged}
    reformatted = False
    if new_text is None or _safe_load(new_text) != expected:
        # no top-level `global:` line to replace (flow style, duplicate keys...): dump it whole
        new_text = dump(expected if "global" in existing else {"global": merged, **existing})
        reformatted = True
    changed = sorted(k for k, v in fields.items() if not _same(old_global, k, v))
    message = f"github-sync: update global of {path} for {subject}\n\n"
    message += f"Changed: {', '.join(changed)}."
    if reformatted:
        message += " The file was re-dumped whole: its global block could not be edited in place."
    return Plan(
        path=path,
        action="updated",
        content=new_text.encode(),
        message=message + trailer,
        max_model_len=file_len,
    )


def _same(old: Any, key: str, value: Any) -> bool:
    if not isinstance(old, dict) or key not in old:
        return False
    return bool(old[key] == value and type(old[key]) is type(value))


def _replace_global_block(text: str, merged: Mapping[str, Any]) -> str | None:
    """``text`` with its top-level ``global:`` block replaced by ``merged``; None if none."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _GLOBAL_LINE.match(line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and not _TOP_LEVEL.match(lines[end]):
        end += 1
    # comments and blank lines right before the next key belong to that key
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    block = dump({"global": dict(merged)})
    return "".join(lines[:start]) + block + "".join(lines[end:])


def _parse_mapping(content: bytes) -> dict[str, Any] | None:
    try:
        document = _safe_load(content.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    return document if isinstance(document, dict) else None


def _safe_load(text: str) -> Any:
    return yaml.safe_load(text)


def _file_max_model_len(document: Mapping[str, Any]) -> int | None:
    vllm = document.get("vllm")
    inner = vllm.get("vllm") if isinstance(vllm, dict) else None
    value = inner.get("maxModelLen") if isinstance(inner, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def created_date(value: datetime | int | None) -> datetime:
    """MLflow's creation time (ms since the epoch) or an aware datetime, as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if value is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)
