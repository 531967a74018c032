"""Deterministic YAML: sorted keys, block style, no aliases, so golden files and GitOps diffs
change only when the manifest does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml


class _NoAliases(yaml.SafeDumper):
    """The same label dict appears in several places; YAML anchors would hide that."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(obj: Mapping[str, Any]) -> str:
    """One manifest as YAML with sorted keys."""
    return yaml.dump(dict(obj), Dumper=_NoAliases, sort_keys=True, default_flow_style=False)


def dump_documents(objs: Sequence[Mapping[str, Any]]) -> str:
    """Several manifests as one multi-document YAML stream (``kubectl apply -f`` reads it)."""
    return "---\n".join(dump_yaml(o) for o in objs)


def load_documents(text: str) -> list[dict[str, Any]]:
    """The manifests of a (multi-document) YAML stream; empty documents are skipped."""
    return [doc for doc in yaml.safe_load_all(text) if doc]
