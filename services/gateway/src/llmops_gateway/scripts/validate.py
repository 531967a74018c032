"""``validate training-jobs`` / ``validate serving-endpoints`` (to be implemented)."""

from __future__ import annotations


def training_jobs() -> None:
    """Re-validate stored training jobs."""
    raise NotImplementedError


def serving_endpoints() -> None:
    """Re-validate stored serving endpoints."""
    raise NotImplementedError
