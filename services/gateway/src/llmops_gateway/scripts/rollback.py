"""``rollback integrations`` (to be implemented)."""

from __future__ import annotations


def integrations() -> None:
    """Turn integration flags off for an environment."""
    raise NotImplementedError
