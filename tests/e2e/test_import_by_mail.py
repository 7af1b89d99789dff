"""A customer's mail over SMTP becomes rows, one threaded reply and a report: on SQLite and
PostgreSQL, with the real listener, workers, parse children and the file outbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fixtures.make_documents import SPECS, encrypted_invoice, render
from fixtures.usage_exports import csv_en_comma
from parsers.fx import Rates, convert
from store.accounts import add_account
from store.models import Document, OutboxMessage
from store.reports import month_summaries, spend_report
from support.importing import PDF, drain, mail_with, replies, send, statuses, text_of
from support.service import InProcessService, settings_for

INVOICE = SPECS["lago_en_eur"]  # October 2026, issued 1 November
CSV = ("text", "csv")
SUMMARY_KEYS = ("month", "total_usd", "previous_month", "change_usd", "change_pct")


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[InProcessService]:
    settings = settings_for(database_url, tmp_path / "data", workers=2)
    with InProcessService(settings) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
        yield running


def outbox(service: InProcessService) -> Path:
    return service.services.settings.outbox_dir


def report(service: InProcessService) -> dict[str, Any]:
    with service.services.db.read() as session:
        return spend_report(session, "acme")


def test_an_invoice_becomes_rows_a_threaded_reply_and_a_report(
    service: InProcessService,
) -> None:
    pdf = render(INVOICE)
    send(
        service.port,
        mail_with([("invoice-october.pdf", pdf, PDF)], subject="Fwd: Mistral import October"),
    )
    drain(service.services.db)

    assert statuses(service.services.db) == ["imported"]
    [reply] = replies(outbox(service))
    assert reply["To"] == "finance@acme.example"
    assert reply["Subject"] == "Re: Fwd: Mistral import October"
    assert reply["In-Reply-To"] == "<m1@acme.example>"
    assert reply["References"] == "<m1@acme.example>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Stax-Import-Status"] == "imported"
    assert reply["X-Stax-Import-Id"] == "1"
    assert reply.get_body(("html",)) is not None
    body = text_of(reply)
    assert INVOICE.number in body and "Mistral Large" in body and "2026-10" in body

    rate = Rates.bundled().usd_rate("EUR", INVOICE.issue_date)
    assert rate is not None
    with service.services.db.read() as session:
        [document] = session.scalars(select(Document)).all()
        assert (document.number, document.month, document.fx_rate) == (
            INVOICE.number,
            "2026-10",
            rate.rate,
        )
        expected_usd = sum((convert(row.amount, rate.rate) for row in INVOICE.rows), Decimal(0))
    [month] = report(service)["months"]
    assert month["month"] == "2026-10"
    assert Decimal(month["total_usd"]) == expected_usd
    assert month["sources"] == [f"invoice {INVOICE.number}"]


def test_the_same_invoice_again_is_a_duplicate_and_not_counted_twice(
    service: InProcessService,
) -> None:
    pdf = render(INVOICE)
    send(service.port, mail_with([("invoice.pdf", pdf, PDF)], message_id="<a@acme.example>"))
    drain(service.services.db)
    total = report(service)["months"][0]["total_usd"]
    # the same file forwarded again, in a new message, under another name
    send(service.port, mail_with([("copy.pdf", pdf, PDF)], message_id="<b@acme.example>"))
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported", "duplicate"]
    assert report(service)["months"][0]["total_usd"] == total
    second = replies(outbox(service))[-1]
    assert second["X-Stax-Import-Status"] == "duplicate"
    assert "first imported in import 1" in text_of(second)


def test_an_invoice_number_back_with_other_content_is_held(service: InProcessService) -> None:
    send(service.port, mail_with([("a.pdf", render(INVOICE), PDF)], message_id="<a@x>"))
    drain(service.services.db)
    changed = dataclasses.replace(INVOICE, rows=INVOICE.rows[:-1])
    send(service.port, mail_with([("b.pdf", render(changed), PDF)], message_id="<b@x>"))
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported", "held"]
    held = replies(outbox(service))[-1]
    assert held["X-Stax-Import-Status"] == "held"
    assert "different content" in text_of(held)


def test_an_invoice_and_its_month_s_usage_export_count_once(service: InProcessService) -> None:
    export = csv_en_comma()
    send(
        service.port,
        mail_with([("invoice.pdf", render(INVOICE), PDF), (export.name, export.data, CSV)]),
    )
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported"]
    with service.services.db.read() as session:
        kinds = sorted(d.kind for d in session.scalars(select(Document)).all())
    assert kinds == ["invoice", "usage_export"]
    months = {m["month"]: m for m in report(service)["months"]}
    assert months["2026-10"]["sources"] == [f"invoice {INVOICE.number}"]


def test_an_unknown_sender_is_held_and_gets_no_reply(service: InProcessService) -> None:
    send(
        service.port,
        mail_with([("invoice.pdf", render(INVOICE), PDF)], sender="stranger@elsewhere.example"),
    )
    drain(service.services.db)
    assert statuses(service.services.db) == ["held"]
    assert replies(outbox(service)) == []
    assert report(service)["months"] == []


def test_mail_without_the_import_subject_gets_the_help_reply(service: InProcessService) -> None:
    send(service.port, mail_with([], subject="Lunch on Friday?"))
    drain(service.services.db)
    assert statuses(service.services.db) == ["rejected"]
    [reply] = replies(outbox(service))
    assert reply["X-Stax-Import-Status"] == "rejected"
    assert reply["Subject"] == "Re: Lunch on Friday?"
    assert '"Mistral import"' in text_of(reply)


def test_a_bad_file_is_named_in_the_rejection_with_its_reason(service: InProcessService) -> None:
    send(service.port, mail_with([("locked.pdf", encrypted_invoice(), PDF)]))
    drain(service.services.db)
    assert statuses(service.services.db) == ["rejected"]
    body = text_of(replies(outbox(service))[0])
    assert "locked.pdf" in body and "password" in body


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<finance.acme.example>"},
        {"X-Auto-Response-Suppress": "All"},
    ],
)
def test_no_reply_to_automatic_mail_but_the_import_happens(
    service: InProcessService, headers: dict[str, str]
) -> None:
    send(service.port, mail_with([("invoice.pdf", render(INVOICE), PDF)], headers=headers))
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported"]
    assert replies(outbox(service)) == []
    with service.services.db.read() as session:
        [row] = session.scalars(select(OutboxMessage)).all()
        assert row.status == "suppressed" and row.last_error


def test_a_null_sender_gets_no_reply(service: InProcessService) -> None:
    send(service.port, mail_with([("invoice.pdf", render(INVOICE), PDF)]), envelope_from="")
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported"]
    assert replies(outbox(service)) == []


def test_a_personal_address_imports_for_its_account(service: InProcessService) -> None:
    with service.services.db.write() as session:
        token = add_account(session, "globex", ["ap@globex.example"], []).token
    mail = mail_with(
        [("invoice.pdf", render(INVOICE), PDF)],
        sender="ap@globex.example",
        to=f"import+{token}@stax.localhost",
    )
    send(service.port, mail)
    drain(service.services.db)
    assert statuses(service.services.db) == ["imported"]
    with service.services.db.read() as session:
        assert spend_report(session, "globex")["months"][0]["month"] == "2026-10"
        assert spend_report(session, "acme")["months"] == []  # never another account's


def test_month_over_month_in_the_report(service: InProcessService) -> None:
    september = dataclasses.replace(
        INVOICE,
        number="MIS-2026-000090",
        issue_date=date(2026, 10, 1),
        period=(date(2026, 9, 1), date(2026, 9, 30)),
        rows=INVOICE.rows[:2],
    )
    send(service.port, mail_with([("sep.pdf", render(september), PDF)], message_id="<s@x>"))
    drain(service.services.db)
    send(service.port, mail_with([("oct.pdf", render(INVOICE), PDF)], message_id="<o@x>"))
    drain(service.services.db)
    months = report(service)["months"]
    assert [m["month"] for m in months] == ["2026-09", "2026-10"]
    october = months[1]
    assert october["previous_month"] == "2026-09"
    change = Decimal(october["total_usd"]) - Decimal(months[0]["total_usd"])
    assert Decimal(october["change_usd"]) == change
    # the reply's month summaries (documents' USD totals, not their lines) say the same
    with service.services.db.read() as session:
        summaries = month_summaries(session, "acme", ["2026-09", "2026-10", "2026-11"])
    without_detail = [{k: m[k] for k in SUMMARY_KEYS} for m in months]
    assert summaries[:2] == without_detail
    assert summaries[2] == {
        "month": "2026-11",
        "total_usd": "0.00",
        "previous_month": "2026-10",
        "change_usd": format(-Decimal(october["total_usd"]), "f"),
        "change_pct": "-100.0",
    }


def test_show_tells_parts_documents_and_the_reply(service: InProcessService) -> None:
    import json
    import os
    import subprocess
    import sys

    logo = ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ("image", "png"))
    send(service.port, mail_with([("invoice.pdf", render(INVOICE), PDF), logo]))
    drain(service.services.db)
    settings = service.services.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(settings.data_dir), STAX_DATABASE_URL=settings.database_url)
    shown = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "show", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    detail = json.loads(shown.stdout)
    outcomes = {a["name"]: (a["outcome"], a["reason"]) for a in detail["attachments"]}
    assert outcomes["invoice.pdf"] == ("imported", None)
    assert outcomes["logo.png"][0] == "skipped" and "image" in outcomes["logo.png"][1]
    assert [d["number"] for d in detail["documents"]] == [INVOICE.number]
    assert [(r["purpose"], r["status"]) for r in detail["replies"]] == [("reply", "sent")]

    # the text form: parts, document and reply first, then the heading and the status history
    text = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "show", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()
    heading = text.index("  history:")
    kinds = [line.split()[0] for line in text[1:heading] if line.startswith("  ")]
    assert kinds[-4:] == ["part", "part", "document", "reply"]
    assert [line.split()[3] for line in text[heading + 1 :]] == [
        "received",
        "processing",
        "imported",
    ]
