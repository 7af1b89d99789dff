"""Alembic environment: runs on the connection store.migrate hands over, online only."""

from __future__ import annotations

from alembic import context

from store.models import Base

connection = context.config.attributes["connection"]
sqlite = connection.dialect.name == "sqlite"
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=sqlite,
    compare_type=True,
)
# SQLite: batch mode changes a table by copy, drop and rename, and with foreign keys on, the
# drop deletes every row that refers to the table (ON DELETE CASCADE): documents with their
# import, lines with their document. So they are off while migrating (a PRAGMA that only
# takes effect outside a transaction), checked once done, and on again.
driver = connection.connection.driver_connection if sqlite else None
if driver is not None:
    driver.execute("PRAGMA foreign_keys=OFF")
try:
    with context.begin_transaction():
        context.run_migrations()
    if driver is not None:
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows without their parent: {broken[:5]}")
finally:
    if driver is not None:
        driver.execute("PRAGMA foreign_keys=ON")
