"""The database a benchmark runs on: SQLite as given, or PostgreSQL in a schema of its own.

Shared by the benchmarks that seed the gateway's tables (``lineage.py``, ``console.py``): a
run never touches the tables of the database it is pointed at.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def own_schema(url: str) -> Iterator[str]:
    """``url`` as is for SQLite; for PostgreSQL a fresh schema of its own (search_path),
    dropped afterwards, so the run never touches the database's tables."""
    if not url.startswith("postgresql"):
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
