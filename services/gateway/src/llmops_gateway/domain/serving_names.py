"""The name of a serving endpoint's cluster resource: a DNS label KServe can serve."""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 63
_KSERVE_HOST_EXTRA: Final = len("latest-") + len("-predictor-")


def max_name_length(environment: str) -> int:
    """The longest InferenceService name KServe can serve in ``environment``.

    KServe builds the host label ``<name>-predictor-<namespace>`` (prefixed ``latest-``/
    ``prev-`` for Serverless canary tags), and a DNS label holds 63 characters, so a 63-character
    name would be accepted here and fail at reconcile time. (33 characters in ``llm-ops-prod``.)
    """
    return min(MAX_NAME_LENGTH, 63 - _KSERVE_HOST_EXTRA - len(f"llm-ops-{environment}"))


_NOT_IN_LABEL: Final = re.compile(r"[^a-z0-9]+")


def _label(text: str) -> str:
    return _NOT_IN_LABEL.sub("-", text.lower()).strip("-")


def endpoint_name(
    route: str,
    model_ref: str,
    *,
    unique_suffix: str | None = None,
    max_length: int = MAX_NAME_LENGTH,
) -> str:
    """The InferenceService name of an endpoint: a DNS-1035 label (lowercase letters, digits
    and '-', starting with a letter, at most 63 characters).

    Derived from the route (``/test-model`` -> ``test-model``), which is what people look for
    with ``kubectl``; from ``model_ref`` when the route has no usable characters (``/``).
    A name that does not start with a letter gets ``ep-`` in front. ``unique_suffix`` (a few
    characters of the endpoint id) is appended when the plain name is taken in the
    environment, truncating the name so the whole stays within ``max_length`` characters.
    """
    base = _label(route) or _label(model_ref) or "endpoint"
    if not base[0].isalpha():
        base = f"ep-{base}"
    if unique_suffix is None:
        return base[:max_length].rstrip("-")
    keep = max_length - len(unique_suffix) - 1
    return f"{base[:keep].rstrip('-')}-{unique_suffix}"
