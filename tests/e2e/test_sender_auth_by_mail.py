"""Sender authentication end to end over SMTP, with replies relayed to a real SMTP sink.

The service runs with STAX_SENDER_AUTH=authres and STAX_AUTHSERV_ID=mx.stax.test, as behind
an MTA that checks DMARC and prepends its Authentication-Results. Replies leave through
STAX_OUTBOUND_SMTP_URL to an aiosmtpd sink on a free loopback port. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import smtplib
import time
from collections.abc import Iterator
from datetime import date, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fixtures.make_documents import SPECS, render
from store.accounts import add_account
from store.models import Document, Import, OutboxMessage
from store.types import utcnow
from support.importing import PDF, drain, mail_with, statuses, text_of
from support.relay_sink import Sink, running_sink
from support.service import InProcessService, settings_for

AUTHSERV_ID = "mx.stax.test"
REGISTERED = "finance@acme.example"
INVOICE = SPECS["lago_en_eur"]
SEPTEMBER = dataclasses.replace(
    INVOICE,
    number="MIS-2026-000090",
    issue_date=date(2026, 10, 1),
    period=(date(2026, 9, 1), date(2026, 9, 30)),
    rows=INVOICE.rows[:2],
)
PASS = (
    f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=acme.example; "
    "dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example"
)


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
        sender_auth="authres",
        authserv_id=AUTHSERV_ID,
        outbound_smtp_url=f"smtp://127.0.0.1:{sink.port}",
    )
    with InProcessService(settings) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", [REGISTERED], [])
        yield running


def forwarded(
    authentication_results: list[str],
    *,
    sender: str = REGISTERED,
    message_id: str = "<m1@acme.example>",
    spec: Any = INVOICE,
    subject: str = "Fwd: Mistral import October",
) -> bytes:
    """The customer's forward as our MTA hands it on: its A-R headers on top."""
    mail = mail_with(
        [("invoice.pdf", render(spec), PDF)],
        subject=subject,
        sender=sender,
        message_id=message_id,
    )
    added = "".join(f"Authentication-Results: {v}\r\n" for v in authentication_results)
    return added.encode() + mail.as_bytes(policy=policy.SMTP)


def send_raw(port: int, raw: bytes, envelope_from: str = REGISTERED) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail(envelope_from, ["import@stax.localhost"], raw)
        assert not refused


def imports(service: InProcessService) -> list[Import]:
    with service.services.db.read() as session:
        return list(session.scalars(select(Import).order_by(Import.id)).all())


def outbox_rows(service: InProcessService) -> list[OutboxMessage]:
    with service.services.db.read() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def document_count(service: InProcessService) -> int:
    with service.services.db.read() as session:
        return len(session.scalars(select(Document.id)).all())


def test_an_authenticated_sender_is_imported_and_answered_through_the_relay(
    service: InProcessService, sink: Sink
) -> None:
    send_raw(service.port, forwarded([PASS]))
    drain(service.services.db)

    assert statuses(service.services.db) == ["imported"]
    assert document_count(service) == 1
    [(mail_from, rcpt_tos, reply)] = sink.received
    assert rcpt_tos == [REGISTERED]
    assert mail_from  # an envelope sender the relay accepts
    assert reply["To"] == REGISTERED
    assert reply["Subject"] == "Re: Fwd: Mistral import October"
    assert reply["In-Reply-To"] == "<m1@acme.example>"
    assert reply["References"] == "<m1@acme.example>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Stax-Import-Status"] == "imported"
    [row] = outbox_rows(service)
    assert reply["X-Stax-Import-Id"] == str(row.import_id)
    assert reply["Message-ID"] == row.message_id
    assert reply.get_body(("html",)) is not None
    assert INVOICE.number in text_of(reply)
    assert (row.status, row.attempts) == ("sent", 1)
    assert row.last_error and row.last_error.startswith("smtp 250")


def test_each_answered_import_gets_exactly_one_message_at_the_relay(
    service: InProcessService, sink: Sink
) -> None:
    send_raw(service.port, forwarded([PASS], message_id="<oct@acme.example>"))
    send_raw(
        service.port,
        forwarded(
            [f"{AUTHSERV_ID}; dmarc=fail header.from=acme.example"],
            message_id="<forged@evil.example>",
        ),
        envelope_from="bounce@evil.example",
    )
    send_raw(
        service.port,
        forwarded(
            [f"{AUTHSERV_ID}; dkim=pass header.d=mail.acme.example; dmarc=none"],
            message_id="<sep@acme.example>",
            spec=SEPTEMBER,
            subject="Mistral import September",
        ),
    )
    drain(service.services.db)

    by_status = {i.id: i.status for i in imports(service)}
    assert sorted(by_status.values()) == ["held", "imported", "imported"]
    answered = {str(i) for i, status in by_status.items() if status == "imported"}
    replies = sink.messages()
    assert len(replies) == 2
    assert {str(r["X-Stax-Import-Id"]) for r in replies} == answered
    assert {str(r["In-Reply-To"]) for r in replies} == {"<oct@acme.example>", "<sep@acme.example>"}
    assert all(r["X-Stax-Import-Status"] == "imported" for r in replies)
    assert all(r["To"] == REGISTERED for r in replies)
    assert document_count(service) == 2


@pytest.mark.parametrize(
    "authentication_results",
    [
        pytest.param(
            [f"{AUTHSERV_ID}; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail"],
            id="dmarc-fail",
        ),
        pytest.param(
            ["mx.evil.example; dkim=pass header.d=acme.example; dmarc=pass"],
            id="only-another-authserv-id",
        ),
        pytest.param(
            [
                f"{AUTHSERV_ID}; dkim=none; dmarc=fail header.from=acme.example",
                f"{AUTHSERV_ID}; dkim=pass header.d=acme.example; dmarc=pass",
            ],
            id="forged-pass-below-ours",
        ),
        pytest.param(
            [f"{AUTHSERV_ID}; dkim=pass header.d=evil.example; dmarc=fail"],
            id="dkim-of-another-domain",
        ),
        pytest.param([], id="no-authentication-results"),
        pytest.param(
            [
                f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=dmarc=pass@evil.example; "
                "dkim=none; dmarc=fail header.from=acme.example"
            ],
            id="pass-inside-a-property-value",
        ),
    ],
)
def test_a_forged_from_is_held_not_imported_and_not_answered(
    service: InProcessService, sink: Sink, authentication_results: list[str]
) -> None:
    send_raw(service.port, forwarded(authentication_results), envelope_from="x@evil.example")
    drain(service.services.db)

    [held] = imports(service)
    assert held.status == "held"
    assert held.reason and "not authenticated" in held.reason
    assert document_count(service) == 0
    assert sink.received == [] and sink.attempts == 0
    assert [r for r in outbox_rows(service) if r.status != "suppressed"] == []


def test_an_unknown_sender_with_a_passing_dmarc_is_held_and_not_answered(
    service: InProcessService, sink: Sink
) -> None:
    header = f"{AUTHSERV_ID}; dmarc=pass header.from=elsewhere.example"
    send_raw(service.port, forwarded([header], sender="stranger@elsewhere.example"))
    drain(service.services.db)

    [held] = imports(service)
    assert held.status == "held"
    assert held.reason and "not a registered sender" in held.reason
    assert document_count(service) == 0
    assert sink.received == []
    assert [r for r in outbox_rows(service) if r.status != "suppressed"] == []


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_reply_deferred_with_451_is_delivered_on_a_later_attempt(
    service: InProcessService, sink: Sink
) -> None:
    sink.defer = 1
    send_raw(service.port, forwarded([PASS]))

    def failed_once() -> bool:
        rows = outbox_rows(service)
        return bool(rows) and rows[0].attempts == 1

    wait_for(failed_once)
    failed_at = utcnow()
    [row] = outbox_rows(service)
    assert row.status == "pending"
    assert row.last_error and "451" in row.last_error
    assert sink.attempts == 1 and sink.received == []
    # mark_failed's backoff (30 s x 2^attempts): the next attempt is a minute away, not now
    wait_before = row.next_attempt_at - failed_at
    assert timedelta(seconds=30) < wait_before <= timedelta(seconds=61)
    time.sleep(0.5)  # several dispatcher rounds (idle poll 0.1 s): it waits as told
    assert sink.attempts == 1

    # Let that minute pass in the database rather than on the clock.
    with service.services.db.write() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    service.services.mail_waiting.set()
    drain(service.services.db)

    [sent] = outbox_rows(service)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert sink.attempts == 2
    [reply] = sink.messages()
    assert reply["X-Stax-Import-Status"] == "imported"
    assert reply["Message-ID"] == sent.message_id
    assert statuses(service.services.db) == ["imported"]
