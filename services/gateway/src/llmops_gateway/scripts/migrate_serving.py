"""``migrate serving-to-kserve`` (to be implemented)."""

from __future__ import annotations


def serving_to_kserve() -> None:
    """Move built-in serving endpoints to KServe InferenceServices."""
    raise NotImplementedError
