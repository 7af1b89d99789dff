"""support threads: an import that answers another import's reply

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_of", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_imports_thread_of"), ["thread_of"], unique=False)
        batch_op.create_foreign_key(
            "fk_imports_thread_of", "imports", ["thread_of"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_constraint("fk_imports_thread_of", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_imports_thread_of"))
        batch_op.drop_column("thread_of")
