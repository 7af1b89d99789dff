"""SQLAlchemy 2 models: inbound mail, imports and their events, accounts, documents, outbox,
IMAP mailboxes and their ledger."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

from store.types import ExactDecimal, UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class Account(Base):
    """A customer; `token` is the secret in its personal plus-address."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    senders: Mapped[list[AccountSender]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="AccountSender.id"
    )


class AccountSender(Base):
    """A sender address, or a whole domain, allowed to import for an account."""

    __tablename__ = "account_senders"
    __table_args__ = (UniqueConstraint("account_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # "address" | "domain"
    value: Mapped[str] = mapped_column(String(320), index=True)  # lower-case

    account: Mapped[Account] = relationship(back_populates="senders")


class InboundMessage(Base):
    """A raw message exactly as received, with its envelope. Written only by `accept`."""

    __tablename__ = "inbound_messages"
    # A redelivery (same Message-ID, same bytes) hits this index and becomes a no-op; a
    # message without Message-ID has message_id "" and so is keyed by its hash alone.
    __table_args__ = (UniqueConstraint("message_id", "sha256", name="uq_inbound_identity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(8))  # smtp | imap | cli
    envelope_from: Mapped[str] = mapped_column(Text)
    envelope_to: Mapped[list[str]] = mapped_column(JSON)
    header_from: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    raw: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    raw_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    import_: Mapped[Import] = relationship(back_populates="inbound")


class Import(Base):
    """What the service does with one inbound message; `status` moves only via store.states."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_claimable", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # a customer's answer on a confirmation thread: the import whose reply it answers
    thread_of: Mapped[int | None] = mapped_column(
        ForeignKey("imports.id", ondelete="SET NULL"), nullable=True, index=True
    )

    inbound: Mapped[InboundMessage] = relationship(back_populates="import_")
    account: Mapped[Account | None] = relationship()
    events: Mapped[list[ImportEvent]] = relationship(
        back_populates="import_", order_by="ImportEvent.id", cascade="all, delete-orphan"
    )


class ImportEvent(Base):
    """One status transition: from, to, who and why. The import's history."""

    __tablename__ = "import_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    import_: Mapped[Import] = relationship(back_populates="events")


class Attachment(Base):
    """Every part of a message worth naming: imported, refused or skipped, with the reason."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)  # where in the message it was found
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # imported|duplicate|held|refused|skipped
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Document(Base):
    """One parsed invoice, usage export or credit purchase of an account."""

    __tablename__ = "documents"
    __table_args__ = (
        # the same invoice number twice is a duplicate (or a conflict), never more spend
        UniqueConstraint("account_id", "kind", "number", name="uq_document_number"),
        Index("ix_documents_account_month", "account_id", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    attachment_id: Mapped[int | None] = mapped_column(
        ForeignKey("attachments.id", ondelete="SET NULL"), nullable=True
    )
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64))  # of the parsed content
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    issue_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    month: Mapped[str | None] = mapped_column(String(7), nullable=True)  # of period_start
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    tax: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    total: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    fx_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    fx_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # the sum of the lines' amount_usd (a line without one counts 0, as in the report), so
    # that a month's total reads one row per document, not every line
    usd_total: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[DocumentLine]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="DocumentLine.id"
    )


class DocumentLine(Base):
    __tablename__ = "document_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    category: Mapped[str] = mapped_column(String(20))
    usage: Mapped[str | None] = mapped_column(String(10), nullable=True)
    quantity: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    unit_price: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    amount_usd: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)

    document: Mapped[Document] = relationship(back_populates="lines")


class OutboxMessage(Base):
    """A mail to send, written in the same transaction as the decision that calls for it, so
    that it is sent exactly once even across a crash (the transactional outbox)."""

    __tablename__ = "outbox"
    # at most one automatic reply per inbound message
    __table_args__ = (UniqueConstraint("import_id", "purpose", name="uq_outbox_purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("imports.id", ondelete="CASCADE"), nullable=True, index=True
    )
    purpose: Mapped[str] = mapped_column(String(20))  # reply | support-forward | ops-alert
    message_id: Mapped[str] = mapped_column(Text)
    to_address: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ImapMailbox(Base):
    """Where the poller stands in one IMAP folder (UIDVALIDITY, last UID seen), and how its
    last contact with the server went, for the ops alerts."""

    __tablename__ = "imap_mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)  # user@host/FOLDER, no secret
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # every UID up to this one has a ledger row, or was there before an `imap_start = "new"`
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since the last success
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImapMessage(Base):
    """The IMAP ledger: one row per message found in a folder, keyed by (mailbox, UIDVALIDITY,
    UID), with the import it became and whether it has been moved out of the folder."""

    __tablename__ = "imap_messages"
    __table_args__ = (
        # two pollers on one mailbox share one row per message, never two
        UniqueConstraint("mailbox_id", "uidvalidity", "uid", name="uq_imap_message_uid"),
        Index("ix_imap_messages_open", "mailbox_id", "uidvalidity", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("imap_mailboxes.id", ondelete="CASCADE"))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # found | stored | moved | vanished
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), nullable=True)
    moved_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed tries to store it
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last failure, or why
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
