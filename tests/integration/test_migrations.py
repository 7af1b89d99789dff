"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from store.accounts import add_account
from store.db import Database
from store.migrate import alembic_config
from store.models import Base, Document, DocumentLine, Import, InboundMessage
from store.types import utcnow


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.writer.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_documents_stored_before_0005_get_their_usd_total_from_their_lines(
    db: Database,
) -> None:
    """0005 adds documents.usd_total and fills it for the documents already stored: the
    sum of their lines' amount_usd, exactly, a line without one counting 0. On SQLite the
    table is rebuilt, which with foreign keys on deleted every line (fixed in env.py)."""
    with db.write() as session:
        account = add_account(session, "acme", ["finance@acme.example"], [])
        inbound = InboundMessage(
            message_id="<m@x>",
            sha256="0" * 64,
            raw=b"",
            source="cli",
            envelope_from="",
            envelope_to=[],
            header_from="finance@acme.example",
            subject="Mistral import",
            size=0,
            received_at=utcnow(),
        )
        session.add(inbound)
        session.flush()
        now = utcnow()
        import_ = Import(
            inbound_id=inbound.id,
            account_id=account.id,
            status="imported",
            received_at=now,
            updated_at=now,
        )
        session.add(import_)
        session.flush()
        amounts = [Decimal("94.13"), Decimal("0.005"), None, Decimal("1.10")]
        session.add(
            Document(
                import_id=import_.id,
                account_id=account.id,
                file_name="invoice.pdf",
                file_sha256="1" * 64,
                content_sha256="2" * 64,
                kind="invoice",
                currency="EUR",
                warnings=[],
                lines=[
                    DocumentLine(
                        description=f"line {n}",
                        model="Mistral Large",
                        category="completion",
                        amount=Decimal(1),
                        amount_usd=usd,
                    )
                    for n, usd in enumerate(amounts)
                ],
            )
        )
    with db.writer.connect() as connection:
        config = alembic_config(connection)
        command.downgrade(config, "0004")  # usd_total goes...
        command.upgrade(config, "head")  # ...and comes back, computed from the lines
        connection.commit()
    with db.read() as session:
        assert session.scalars(select(Document.usd_total)).one() == Decimal("95.235")
        # SQLite rebuilt `documents` to drop and add the column: its lines are all still there
        assert len(session.scalars(select(DocumentLine.id)).all()) == len(amounts)
