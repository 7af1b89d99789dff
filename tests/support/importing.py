"""Helpers for end-to-end import tests: mail with attachments, draining, reading replies."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from store.db import Database
from store.models import Import, OutboxMessage
from support.mail import IMPORT_ADDRESS

PDF = ("application", "pdf")


def mail_with(
    files: Sequence[tuple[str, bytes, tuple[str, str]]],
    subject: str = "Mistral import",
    sender: str = "finance@acme.example",
    message_id: str = "<m1@acme.example>",
    to: str = IMPORT_ADDRESS,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Acme Finance <{sender}>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content("Our Mistral documents are attached.\n")
    for name, data, (maintype, subtype) in files:
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail


def send(port: int, mail: EmailMessage, envelope_from: str | None = None) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        sender = envelope_from if envelope_from is not None else str(mail["From"])
        refused = client.send_message(mail, from_addr=sender)
        assert not refused
    return 250


def drain(db: Database, timeout: float = 60) -> None:
    """Wait until every import has a verdict and every reply has left the outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            busy = session.scalars(
                select(Import.id).where(Import.status.in_(("received", "processing")))
            ).first()
            pending = session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.status == "pending")
            ).first()
        if busy is None and pending is None:
            return
        time.sleep(0.05)
    raise AssertionError("imports or replies still in flight")


def statuses(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(Import.status).order_by(Import.id)).all())


def replies(outbox: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    # by import, oldest first (file names sort by second, which two replies may share)
    return sorted(found, key=lambda m: int(str(m.get("X-Stax-Import-Id", "0"))))


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
