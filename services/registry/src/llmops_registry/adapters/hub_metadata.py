"""What a Hub model says about itself: its ``config.json`` and its license.

Split out of :mod:`llmops_registry.adapters.huggingface` because the online resolve and the
offline cache (:mod:`llmops_registry.adapters.hub_cache`) read these facts the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from huggingface_hub.hf_api import ModelInfo

from llmops_registry.ports import InvalidModel

CONFIG_FILE: Final = "config.json"
DEFAULT_BRANCH: Final = "main"
COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")


def read_config(path: Path, where: str) -> Mapping[str, Any]:
    """The parsed ``config.json``; :class:`InvalidModel` unless it is a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidModel(f"{where} is malformed: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidModel(f"{where} is malformed: not a JSON object")
    return data


def license_value(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:256]
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0][:256]
    return None


def license_of(info: ModelInfo) -> str | None:
    """The model card's ``license``, else the ``license:<id>`` tag."""
    card = info.card_data
    if card is not None:
        found = license_value(card.get("license"))
        if found:
            return found
    for tag in info.tags or ():
        if tag.startswith("license:"):
            return license_value(tag.removeprefix("license:"))
    return None
