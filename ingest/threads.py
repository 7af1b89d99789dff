"""Support threads: a customer's answer to one of our replies joins that import's thread and
is forwarded to support, instead of being answered by a machine."""

from __future__ import annotations

import re
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from ingest.pipeline import Effects, ImportContext, Outcome
from ingest.steps import facts_of
from notify.subjects import one_line
from store.db import Database
from store.models import Import, InboundMessage, OutboxMessage
from store.outbox import queue_mail
from store.states import Status
from store.types import utcnow

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
ANSWER_PURPOSES = ("reply", "follow-up")


def referenced_ids(message: Message) -> list[str]:
    values = [str(v) for h in ("In-Reply-To", "References") for v in message.get_all(h, [])]
    return _MESSAGE_ID.findall(" ".join(values))[:100]


def thread_root(session: Session, message_ids: list[str]) -> int | None:
    """The import whose reply (or thread) these Message-IDs name, if any."""
    if not message_ids:
        return None
    import_id = session.scalar(
        select(OutboxMessage.import_id)
        .where(
            OutboxMessage.message_id.in_(message_ids), OutboxMessage.purpose.in_(ANSWER_PURPOSES)
        )
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    if import_id is None:
        return None
    root = session.scalar(select(Import.thread_of).where(Import.id == import_id))
    return root or import_id


class RecognizeThread:
    """Marks the import as part of a thread; the steps after it still import attachments."""

    name = "recognize thread"

    def __init__(self, db: Database) -> None:
        self._db = db

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        with self._db.write() as session:
            root = thread_root(session, referenced_ids(facts.message))
            if root is not None and root != context.import_id:
                session.execute(
                    update(Import).where(Import.id == context.import_id).values(thread_of=root)
                )
                facts.thread_of = root
        return None


class AnswerWithoutFiles:
    """A customer's answer with nothing to import: forwarded to support, not answered."""

    name = "answer without files"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        if facts.thread_of is None or (facts.extracted and facts.extracted.attachments):
            return None
        return Outcome(
            Status.REJECTED,
            f"an answer on the thread of import {facts.thread_of}: nothing to "
            "import; forwarded to support",
            forward_to_support(self._settings, context),
        )


def forward_to_support(
    settings: Settings, context: ImportContext, then: Effects | None = None
) -> Effects:
    """The support mail: who wrote, on which import, a link to its console page, and the
    customer's message itself attached."""

    def write(session: Session) -> None:
        if then is not None:
            then(session)
        if _forwarded(session, context.import_id):
            return  # a re-run (retry, replay) of an answer support has had: once is enough
        facts = facts_of(context)
        root = facts.thread_of
        now = utcnow()
        mail = EmailMessage()
        mail["From"] = f"Stax mail import <{settings.import_address}>"
        mail["To"] = settings.support_address
        mail["Subject"] = (
            f"[stax-import] answer on import {root}: {one_line(facts.original.subject, 150)}"
        )
        mail["Date"] = format_datetime(now)
        mail["Message-ID"] = make_msgid(
            "stax-import-support", settings.import_address.rpartition("@")[2]
        )
        mail["Auto-Submitted"] = "auto-generated"
        sender = facts.sender.address if facts.sender else None
        mail.set_content(
            f"{sender or 'A customer'} answered on the thread of import {root}"
            f" (this message is import {context.import_id}).\n\n"
            f"Console: http://{settings.http_host}:{settings.http_port}/imports/{root}\n"
            f"Thread: stax-import thread {root}\n"
        )
        mail.add_attachment(
            context.raw, maintype="message", subtype="rfc822", filename="customer-answer.eml"
        )
        queue_mail(
            session,
            import_id=context.import_id,
            purpose="support-forward",
            message_id=str(mail["Message-ID"]),
            to_address=settings.support_address,
            raw=mail.as_bytes(),
            fingerprint=None,
            now=now,
        )

    return write


def _forwarded(session: Session, import_id: int) -> bool:
    return (
        session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.import_id == import_id,
                OutboxMessage.purpose == "support-forward",
            )
        )
        is not None
    )


def conversation(session: Session, import_id: int) -> list[dict[str, Any]]:
    """The whole thread of an import, oldest first: the customer's messages, our replies,
    and the forwards to support."""
    root = session.scalar(select(Import.thread_of).where(Import.id == import_id)) or import_id
    imports = session.scalars(
        select(Import)
        .where(or_(Import.id == root, Import.thread_of == root))
        .order_by(Import.received_at, Import.id)
    ).all()
    entries: list[dict[str, Any]] = []
    for imp in imports:
        inbound = session.get_one(InboundMessage, imp.inbound_id)
        entries.append(
            {
                "at": imp.received_at,
                "kind": "inbound",
                "import_id": imp.id,
                "from": inbound.header_from or inbound.envelope_from,
                "subject": inbound.subject,
                "message_id": inbound.message_id or None,
                "status": imp.status,
                "reason": imp.reason,
            }
        )
        for out in session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.import_id == imp.id)
            .order_by(OutboxMessage.id)
        ).all():
            entries.append(
                {
                    "at": out.sent_at or out.created_at,
                    "kind": out.purpose,
                    "import_id": imp.id,
                    "to": out.to_address,
                    "message_id": out.message_id or None,
                    "status": out.status,
                    "note": out.last_error,
                }
            )
    return sorted(entries, key=lambda e: e["at"])


def resolve_import(session: Session, key: str) -> int | None:
    """An import id, or a Message-ID of the customer's mail or of one of our replies."""
    if key.isdigit():
        return int(key) if session.get(Import, int(key)) else None
    found = session.scalar(
        select(Import.id).join(InboundMessage).where(InboundMessage.message_id == key).limit(1)
    )
    if found is None:
        found = session.scalar(
            select(OutboxMessage.import_id).where(OutboxMessage.message_id == key).limit(1)
        )
    return found
