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

from llmops_github_sync.ports import Action, DependencyUnavailableError, Plan, SyncRejected

HELM_MODEL_PATH: Final = (
    "/mlflow/{{ .Values.global.experimentId }}/{{ .Values.global.runid }}/artifacts/model"
)
MAX_POSITION_TAGS: Final = ("max_position_embeddings", "llmops.max_position_embeddings")
HEADER: Final = "# Helm values of MLflow run {run_id}, written by llmops github-sync.\n"
_GLOBAL_LINE = re.compile(r"^global[ \t]*:")
_TOP_LEVEL = re.compile(r"^[^\s#]")
_MAX_MODEL_LEN_LINE = re.compile(
    r"^(?P<head>[ \t]+maxModelLen[ \t]*:[ \t]*)(?P<value>[0-9]+)(?P<tail>[ \t]*(?:#.*)?)$"
)
MAX_ALIASES: Final = 25
"""More YAML aliases than this in a values file and it is refused, never loaded: with merge keys
(``<<: [*a, *a, ...]``) a few hundred bytes expand exponentially (a "billion laughs")."""


class TemplateError(Exception):
    """The values template cannot be used (not YAML, not a mapping): retrying will not help.
    A template that cannot be *read* (an OSError: a volume not mounted yet, permissions)
    raises ``DependencyUnavailableError`` instead: the consumer pauses until it can be."""


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
    """What the file at ``path`` must become for ``facts`` (see the module docstring).

    Raises :class:`~llmops_github_sync.ports.SyncRejected` for a file the service must neither
    edit nor regenerate: more than :data:`MAX_ALIASES` YAML aliases, or several documents of
    which the first is not a mapping (regenerating would destroy the others)."""
    subject = f"{facts.model_name}/{facts.version}"
    trailer = f"\n\nModel-Version: {subject}\nRun-Id: {facts.run_id}\n"
    if current is not None:
        parsed = _parse_documents(path, current)
        if parsed is not None:
            return _plan_update(path, parsed, facts, subject, trailer)
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


@dataclass(frozen=True)
class _Parsed:
    """An existing values file: its text, its documents, and the line where the second
    document starts (None: one document); only the first document is ever edited."""

    text: str
    documents: list[Any]
    boundary: int | None


def _parse_documents(path: str, content: bytes) -> _Parsed | None:
    """The file's documents when its first one is a mapping; None when it must be regenerated
    (not UTF-8, not YAML, empty, one document that is not a mapping)."""
    try:
        text = content.decode("utf-8")
        aliases = 0
        starts: list[int] = []
        # the event stream is linear in the text: count aliases before anything is built
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise SyncRejected(
                        f"{path} uses more than {MAX_ALIASES} YAML aliases: github-sync does not "
                        "load it (an alias bomb expands exponentially); set its global fields by "
                        "hand or use fewer aliases"
                    )
            elif isinstance(event, yaml.DocumentStartEvent) and event.start_mark is not None:
                starts.append(event.start_mark.line)
        documents = list(yaml.safe_load_all(text))
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    if not any(d is not None for d in documents):
        return None  # empty
    first = documents[0]
    if not isinstance(first, dict):
        if len(documents) == 1:
            return None
        raise SyncRejected(
            f"{path} holds {len(documents)} YAML documents and the first is not a mapping: "
            "github-sync edits only the first document and does not regenerate the file "
            "(that would destroy the others)"
        )
    return _Parsed(text, documents, starts[1] if len(starts) > 1 else None)


def _plan_update(
    path: str,
    parsed: _Parsed,
    facts: VersionFacts,
    subject: str,
    trailer: str,
) -> Plan:
    existing: dict[str, Any] = parsed.documents[0]
    fields = global_fields(facts)
    old_global = existing.get("global")
    file_len = _file_max_model_len(existing)
    newer = _newer_version_in_file(old_global, facts)
    if newer is not None:
        return Plan(
            path=path,
            action="unchanged",
            content=None,
            max_model_len=file_len,
            note=f"names a newer version ({newer}) of {facts.model_name} for this run: kept",
        )
    limit = facts.max_position_embeddings
    lower_to = limit if limit is not None and file_len is not None and file_len > limit else None
    changed = sorted(k for k, v in fields.items() if not _same(old_global, k, v))
    if not changed and lower_to is None:
        return Plan(path=path, action="unchanged", content=None, max_model_len=file_len)
    merged = {**(old_global if isinstance(old_global, dict) else {}), **fields}
    if "global" in existing:
        expected = {**existing, "global": merged}
    else:
        expected = {"global": merged, **existing}
    if lower_to is not None:
        vllm = existing["vllm"]
        expected["vllm"] = {**vllm, "vllm": {**vllm["vllm"], "maxModelLen": lower_to}}
    expected_documents = [expected, *parsed.documents[1:]]
    new_text = _edit_in_place(parsed, merged if changed else None, lower_to)
    reformatted = new_text is None or not _same_documents(new_text, expected_documents)
    if new_text is None or reformatted:
        new_text = _dump_documents(expected_documents)
    if changed:
        message = f"github-sync: update global of {path} for {subject}\n\n"
        message += f"Changed: {', '.join(changed)}."
    else:
        message = f"github-sync: lower maxModelLen of {path} for {subject}\n\n"
    note = None
    if lower_to is not None:
        note = (
            f"maxModelLen lowered from {file_len} to {lower_to}: the model's "
            f"max_position_embeddings is {limit}"
        )
        message += (" " if changed else "") + note + "."
    if reformatted:
        message += " The file was re-dumped whole: it could not be edited in place."
    if len(parsed.documents) > 1:
        message += " Only the first of its YAML documents was edited."
    return Plan(
        path=path,
        action="updated",
        content=new_text.encode(),
        message=message + trailer,
        max_model_len=lower_to if lower_to is not None else file_len,
        capped=lower_to is not None,
        note=note,
    )


def _newer_version_in_file(old_global: Any, facts: VersionFacts) -> str | None:
    """The file's version when it names a newer version of the same model for the same run
    (both versions integers); None otherwise."""
    if not isinstance(old_global, dict):
        return None
    if str(old_global.get("runid")) != facts.run_id:
        return None
    if old_global.get("modelName") != facts.model_name:
        return None
    old, new = str(old_global.get("modelVersion")), str(facts.version)
    if _INTEGER.fullmatch(old) and _INTEGER.fullmatch(new) and int(old) > int(new):
        return old
    return None


_INTEGER = re.compile(r"[0-9]+")


def _same(old: Any, key: str, value: Any) -> bool:
    if not isinstance(old, dict) or key not in old:
        return False
    return bool(old[key] == value and type(old[key]) is type(value))


def _edit_in_place(
    parsed: _Parsed, merged: Mapping[str, Any] | None, lower_to: int | None
) -> str | None:
    """The text with the first document's ``global:`` block replaced by ``merged`` (when
    given) and its one ``maxModelLen:`` line set to ``lower_to`` (when given); every other
    byte as it was. None when that cannot be done (no block-style ``global:`` line, no single
    ``maxModelLen:`` line)."""
    lines = parsed.text.splitlines(keepends=True)
    cut = len(lines) if parsed.boundary is None else parsed.boundary
    head, tail = lines[:cut], lines[cut:]
    if merged is not None:
        replaced = _replace_global_block(head, merged)
        if replaced is None:
            return None
        head = replaced
    if lower_to is not None:
        found = [
            (i, m)
            for i, line in enumerate(head)
            if (m := _MAX_MODEL_LEN_LINE.match(line.rstrip("\r\n")))
        ]
        if len(found) != 1:
            return None
        i, match = found[0]
        ending = head[i][len(head[i].rstrip("\r\n")) :]
        head[i] = f"{match['head']}{lower_to}{match['tail']}{ending}"
    return "".join(head + tail)


def _replace_global_block(lines: list[str], merged: Mapping[str, Any]) -> list[str] | None:
    """``lines`` with the top-level ``global:`` block replaced by ``merged``; None if none."""
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
    return [*lines[:start], *block.splitlines(keepends=True), *lines[end:]]


def _same_documents(text: str, expected: list[Any]) -> bool:
    """Whether ``text`` loads to ``expected``, compared as canonical dumps (linear in the size
    of the dumps, shared nodes are dumped once as anchors), never as graphs: ``==`` on two
    loaded alias graphs walks every path through them (exponential)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return False  # e.g. an alias whose anchor was on the replaced global line
    return _canonical(documents) == _canonical(expected)


def _canonical(documents: list[Any]) -> str:
    return yaml.dump_all(documents, Dumper=yaml.SafeDumper, sort_keys=True, allow_unicode=True)


def _dump_documents(documents: list[Any]) -> str:
    """The documents dumped whole (a trailing empty document is dropped)."""
    while len(documents) > 1 and documents[-1] is None:
        documents = documents[:-1]
    if len(documents) == 1:
        return dump(documents[0])
    return yaml.dump_all(
        documents,
        Dumper=_StableDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        indent=2,
        explicit_start=True,
    )


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
