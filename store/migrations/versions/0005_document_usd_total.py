"""documents.usd_total: the sum of a document's lines in USD, stored with the document

The confirmation reply gives the month's total; summing it from every line of the month on
each import made an account with many documents a month slower with each one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:40:00
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usd_total", sa.String(64), nullable=True))
    # Sums in Decimal, from the exact text of each line (SQL would sum floats on SQLite).
    connection = op.get_bind()
    totals: dict[int, Decimal] = defaultdict(Decimal)
    lines = connection.execute(sa.text("SELECT document_id, amount_usd FROM document_lines"))
    for document_id, amount_usd in lines:
        totals[document_id] += Decimal(amount_usd) if amount_usd is not None else Decimal(0)
    documents = sa.table("documents", sa.column("id", sa.Integer), sa.column("usd_total"))
    for document_id in connection.execute(sa.text("SELECT id FROM documents")).scalars():
        total = format(totals.get(document_id, Decimal(0)), "f")
        connection.execute(
            documents.update().where(documents.c.id == document_id).values(usd_total=total)
        )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("usd_total")
