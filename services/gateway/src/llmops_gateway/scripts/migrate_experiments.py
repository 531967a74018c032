"""``migrate experiments-to-mlflow`` (to be implemented)."""

from __future__ import annotations


def experiments_to_mlflow() -> None:
    """Move built-in experiment runs to MLflow."""
    raise NotImplementedError
