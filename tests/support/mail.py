"""Mail for the tests: messages of a given size, and an SMTP client that checks codes."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

IMPORT_ADDRESS = "import@stax.localhost"


def message(
    n: int,
    size: int = 2048,
    subject: str = "Mistral import",
    sender: str = "finance@customer.example",
    message_id: str | None = None,
) -> bytes:
    """A plain message of about `size` bytes with a unique Message-ID."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = IMPORT_ADDRESS
    mail["Subject"] = f"{subject} #{n}"
    mail["Date"] = format_datetime(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    mail["Message-ID"] = message_id or f"<test-{n}@customer.example>"
    line = "Invoice attached. " * 4 + "\n"
    body = (line * (size // len(line) + 1))[:size]
    mail.set_content(body)
    return mail.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def deliver(
    port: int, raw: bytes, rcpt: str = IMPORT_ADDRESS, sender: str = "finance@customer.example"
) -> tuple[int, bytes]:
    """One SMTP transaction; returns the code and text of the answer to the final dot."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        code, text = client.mail(sender)
        if code != 250:
            return code, text
        code, text = client.rcpt(rcpt)
        if code not in (250, 251):
            return code, text
        return client.data(raw)
