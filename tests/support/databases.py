"""Throwaway databases: a SQLite file, or a PostgreSQL database created and dropped per use."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

PG_ADMIN = os.environ.get("STAX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _must_run() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextmanager
def throwaway_database(backend: str, folder: Path) -> Iterator[str]:
    """Yield a SQLAlchemy URL for an empty database of `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'stax-import.db'}"
        return
    name = f"stax_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}"
        if _must_run():
            pytest.fail(f"CI is set, so PostgreSQL tests may not skip: {message}")
        pytest.skip(message)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
