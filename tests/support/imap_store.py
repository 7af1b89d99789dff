"""What the store holds after IMAP intake, for the IMAP tests: imports per Message-ID, the
ledger and the mailbox's health; and `eventually`, to wait on any of them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from typing import TypeVar

from sqlalchemy import func, select

from ingest.imap import MailboxAddress
from store.db import Database
from store.mailboxes import ledger, mailbox_state
from store.models import ImapMailbox, ImapMessage, Import, InboundMessage

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 20, what: str = "the condition") -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} was not met within {timeout} s (last: {result!r})")
        time.sleep(0.1)


@dataclass(frozen=True)
class Stored:
    inbound: Counter[str]  # Message-ID -> how many inbound messages carry it
    imports: int
    statuses: Counter[str]
    sources: set[str]


def stored(db: Database) -> Stored:
    with db.read() as session:
        inbound = Counter(session.scalars(select(InboundMessage.message_id)).all())
        imports = session.scalar(select(func.count(Import.id))) or 0
        statuses = Counter(session.scalars(select(Import.status)).all())
        sources = set(session.scalars(select(InboundMessage.source)).all())
    return Stored(inbound, imports, statuses, sources)


def mailbox_name(url: str) -> str:
    return MailboxAddress.parse(url).name


def health(db: Database, url: str) -> ImapMailbox | None:
    with db.read() as session:
        return mailbox_state(session, mailbox_name(url))


def rows(db: Database, url: str) -> list[ImapMessage]:
    with db.read() as session:
        return ledger(session, mailbox_name(url))


def all_moved(db: Database, url: str, count: int) -> bool:
    """The ledger has `count` rows, each moved: the server's move is recorded, too."""
    entries = rows(db, url)
    return len(entries) == count and all(e.status == "moved" for e in entries)


def message_ids(messages: list[tuple[bytes, tuple[bytes, ...]]]) -> list[str]:
    """The Message-IDs of (raw, flags) pairs as `Mailbox.messages` returns them."""
    return [str(message_from_bytes(raw)["Message-ID"]) for raw, _ in messages]
