"""Replies through a real SMTP relay (an aiosmtpd sink on loopback) that is slow, shared or
keeps deferring: intake never waits for the relay, two dispatchers send a reply once, and a
reply deferred for days is given up where ops can see it. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fixtures.make_documents import SPECS, render
from ingest.dispatcher import Dispatcher
from ingest.metrics import DatabaseCollector
from notify.mailer import SmtpRelay
from store.accounts import add_account
from store.db import Database
from store.models import Import, InboundMessage, OutboxMessage
from store.outbox import RETRY_FOR, queue_mail
from store.types import utcnow
from support.imap_store import eventually
from support.importing import PDF, drain, mail_with, send
from support.relay_sink import Sink, running_sink
from support.service import InProcessService, settings_for

INVOICE = SPECS["lago_en_eur"]
OTHER_INVOICE = SPECS["lago_en_usd"]


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as handler:
        yield handler


@pytest.fixture
def service(database_url: str, tmp_path: Path, sink: Sink) -> Iterator[InProcessService]:
    settings = settings_for(
        database_url,
        tmp_path / "data",
        workers=2,
        outbound_smtp_url=f"smtp://127.0.0.1:{sink.port}",
    )
    with InProcessService(settings) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
        yield running


def status_of(db: Database, message_id: str) -> str | None:
    with db.read() as session:
        return session.scalar(
            select(Import.status)
            .join(InboundMessage, InboundMessage.id == Import.inbound_id)
            .where(InboundMessage.message_id == message_id)
        )


def test_a_relay_that_hangs_holds_up_no_customer_mail(
    service: InProcessService, sink: Sink
) -> None:
    db = service.services.db
    sink.hold.set()  # the relay takes the first reply's DATA and does not answer
    send(service.port, mail_with([("oct.pdf", render(INVOICE), PDF)], message_id="<a@x>"))
    assert sink.holding.wait(30), "the first reply never reached the relay"

    # while that reply hangs in the relay, the next customer's mail is taken and imported
    started = time.monotonic()
    send(service.port, mail_with([("usd.pdf", render(OTHER_INVOICE), PDF)], message_id="<b@x>"))
    eventually(lambda: status_of(db, "<b@x>") == "imported", what="the second import")
    assert sink.received == [] and not sink.release.is_set()
    print(f"\nsecond mail imported {time.monotonic() - started:.2f} s after its DATA")

    sink.release.set()
    drain(db)
    answered = sorted(str(m["In-Reply-To"]) for m in sink.messages())
    assert answered == ["<a@x>", "<b@x>"]  # one reply each, none twice
    with db.read() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("sent", 1)]


def queue_reply(db: Database, number: int) -> None:
    with db.write() as session:
        queue_mail(
            session,
            import_id=None,
            purpose="ops-alert",
            message_id=f"<reply-{number}@stax.test>",
            to_address="finance@acme.example",
            raw=(
                f"From: import@stax.test\r\nTo: finance@acme.example\r\n"
                f"Message-ID: <reply-{number}@stax.test>\r\nSubject: test {number}\r\n\r\n"
                "body\r\n"
            ).encode(),
            fingerprint=None,
            now=utcnow(),
        )


def test_two_dispatchers_send_each_mail_once(db: Database) -> None:
    with running_sink() as sink:
        sink.hold.set()
        relay = f"smtp://127.0.0.1:{sink.port}"
        first, second = Dispatcher(db, SmtpRelay(relay)), Dispatcher(db, SmtpRelay(relay))
        queue_reply(db, 1)
        sent: list[int] = []
        sending = threading.Thread(target=lambda: sent.append(first.send_due()))
        sending.start()
        assert sink.holding.wait(30)
        assert second.send_due() == 0  # the first has it: the second does not send it too
        sink.release.set()
        sending.join(30)
        assert sent == [1]
        assert second.send_due() == 0  # and once sent, it is never due again
        assert [str(m["Message-ID"]) for m in sink.messages()] == ["<reply-1@stax.test>"]


def test_a_reply_deferred_for_days_is_given_up_and_counted_for_ops(db: Database) -> None:
    with running_sink() as sink:
        sink.defer = 1000  # the relay answers 451 to everything
        queue_reply(db, 1)
        now = utcnow()
        clock = [now]
        dispatcher = Dispatcher(db, SmtpRelay(f"smtp://127.0.0.1:{sink.port}"), lambda: clock[0])
        assert dispatcher.send_due() == 0
        with db.read() as session:
            row = session.scalars(select(OutboxMessage)).one()
            assert (row.status, row.attempts) == ("pending", 1)
            assert row.last_error and "451" in row.last_error
        # a day later the relay still defers: tried again, still pending
        clock[0] = now + timedelta(days=1)
        _make_due(db)
        dispatcher.send_due()
        with db.read() as session:
            assert session.scalars(select(OutboxMessage.status)).one() == "pending"
        # past RETRY_FOR: given up, and the metric ops alert on says so
        clock[0] = now + RETRY_FOR + timedelta(minutes=1)
        _make_due(db)
        dispatcher.send_due()
        with db.read() as session:
            row = session.scalars(select(OutboxMessage)).one()
            assert (row.status, row.attempts) == ("failed", 3)
        assert sink.attempts == 3 and sink.received == []
        gauges = {
            sample.labels.get("status"): sample.value
            for family in DatabaseCollector(db, "none").collect()
            if family.name == "stax_outbox_mail"
            for sample in family.samples
        }
        assert gauges == {"pending": 0, "failed": 1}


def _make_due(db: Database) -> None:
    with db.write() as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(days=9)))
