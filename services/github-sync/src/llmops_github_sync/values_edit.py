"""Updating an existing values file in place: only the fields the service owns change.

Split out of :mod:`llmops_github_sync.values`, which decides between creating, regenerating and
updating a file; this module is the update: the top-level ``global:`` block's text is replaced
(and ``maxModelLen`` lowered when the model's context is shorter), every other byte stays as it
was, and a file already right is left alone (``unchanged``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmops_github_sync.ports import Plan
from llmops_github_sync.values_facts import VersionFacts, global_fields
from llmops_github_sync.values_yaml import Parsed, dump, dump_documents, same_documents

_GLOBAL_LINE = re.compile(r"^global[ \t]*:")
_TOP_LEVEL = re.compile(r"^[^\s#]")
_MAX_MODEL_LEN_LINE = re.compile(
    r"^(?P<head>[ \t]+maxModelLen[ \t]*:[ \t]*)(?P<value>[0-9]+)(?P<tail>[ \t]*(?:#.*)?)$"
)


def plan_update(
    path: str,
    parsed: Parsed,
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
    reformatted = new_text is None or not same_documents(new_text, expected_documents)
    if new_text is None or reformatted:
        new_text = dump_documents(expected_documents)
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
    parsed: Parsed, merged: Mapping[str, Any] | None, lower_to: int | None
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


def _file_max_model_len(document: Mapping[str, Any]) -> int | None:
    vllm = document.get("vllm")
    inner = vllm.get("vllm") if isinstance(vllm, dict) else None
    value = inner.get("maxModelLen") if isinstance(inner, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
