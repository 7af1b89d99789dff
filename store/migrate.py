"""Applies pending Alembic migrations, one process at a time."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from store.db import Database

# Any constant will do: it only has to be the same in every process of this service.
PG_MIGRATION_LOCK = 7_410_221_905


def upgrade(db: Database) -> None:
    """Bring the schema to head. `serve` and every command call this first, so two of them
    starting together must not both migrate: an advisory lock on PostgreSQL, a file lock
    beside the database on SQLite."""
    with _migration_lock(db), db.writer.connect() as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.commit()


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for our migrations, run on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.attributes["connection"] = connection
    return config


def _script_location() -> Path:
    return Path(str(resources.files("store") / "migrations"))


@contextmanager
def _migration_lock(db: Database) -> Iterator[None]:
    if db.is_sqlite:
        database = db.url.database or ""
        lock_path = Path(database + ".migrate-lock") if database else None
        if lock_path is None or database == ":memory:":
            yield
            return
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with db.writer.connect() as connection:
        _advisory(connection, "pg_advisory_lock")
        try:
            yield
        finally:
            _advisory(connection, "pg_advisory_unlock")


def _advisory(connection: Connection, function: str) -> None:
    connection.execute(text(f"SELECT {function}(:key)"), {"key": PG_MIGRATION_LOCK})
    connection.commit()
