"""YAML in and out of values files: one stable dump style, and a guarded multi-document load.

Split out of :mod:`llmops_github_sync.values`: both a rendered document and an in-place edit
(:mod:`llmops_github_sync.values_edit`) are written with :func:`dump`, and an existing file is
read with :func:`parse_documents`, which refuses an alias bomb before anything is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from llmops_github_sync.ports import SyncRejected

MAX_ALIASES: Final = 25
"""More YAML aliases than this in a values file and it is refused, never loaded: with merge keys
(``<<: [*a, *a, ...]``) a few hundred bytes expand exponentially (a "billion laughs")."""


class _StableDumper(yaml.SafeDumper):
    """Block style, keys in insertion order, strings that would read as something else (a
    number, a boolean) or hold a Helm expression in double quotes, as the replaced MLflow GitHub
    sync service wrote them."""


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

_STABLE_STYLE: Final[dict[str, Any]] = {
    "Dumper": _StableDumper,
    "sort_keys": False,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 4096,
    "indent": 2,
}
"""The options of every dump the service writes (:func:`dump`, :func:`dump_documents`)."""


def dump(document: Mapping[str, Any]) -> str:
    """One stable YAML style for everything the service writes."""
    text: str = yaml.dump(document, **_STABLE_STYLE)
    return text


def dump_documents(documents: list[Any]) -> str:
    """The documents dumped whole (a trailing empty document is dropped)."""
    while len(documents) > 1 and documents[-1] is None:
        documents = documents[:-1]
    if len(documents) == 1:
        return dump(documents[0])
    text: str = yaml.dump_all(documents, explicit_start=True, **_STABLE_STYLE)
    return text


def same_documents(text: str, expected: list[Any]) -> bool:
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


@dataclass(frozen=True)
class Parsed:
    """An existing values file: its text, its documents, and the line where the second
    document starts (None: one document); only the first document is ever edited."""

    text: str
    documents: list[Any]
    boundary: int | None


def parse_documents(path: str, content: bytes) -> Parsed | None:
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
    return Parsed(text, documents, starts[1] if len(starts) > 1 else None)
