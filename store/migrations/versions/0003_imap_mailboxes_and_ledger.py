"""imap mailboxes and their ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 20:27:44.320176
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_success_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "imap_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("moved_to", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
        ),
        sa.ForeignKeyConstraint(["mailbox_id"], ["imap_mailboxes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox_id", "uidvalidity", "uid", name="uq_imap_message_uid"),
    )
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_imap_messages_open", ["mailbox_id", "uidvalidity", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("imap_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_imap_messages_open")

    op.drop_table("imap_messages")
    op.drop_table("imap_mailboxes")
