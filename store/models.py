"""SQLAlchemy 2 models: inbound mail, imports and their events, accounts and their senders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

from store.types import UTCDateTime, utcnow


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
