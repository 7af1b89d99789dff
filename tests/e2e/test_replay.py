"""Ops replay stored mail through the current parsers after a fix: a dry run changes nothing;
an import that counted nothing goes back to a worker; one that counted spend is held for a
person and never counted twice. The real service on SQLite and PostgreSQL, and
`stax-import` in a child process, as ops run it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from fixtures.make_documents import SPECS, render
from ingest.jobs import Jobs
from store.accounts import add_account
from store.db import Database
from store.models import Attachment, Base, Document, DocumentLine, Import, ImportEvent
from store.reports import spend_report
from store.types import utcnow
from support.cli import stax as run_stax
from support.importing import PDF, drain, mail_with, replies, send, statuses
from support.service import InProcessService, settings_for

OCTOBER = SPECS["lago_en_eur"]
JANUARY = SPECS["lago_fr_eur"]
US_OCTOBER = SPECS["lago_en_usd"]
OLD_REFUSAL = "this PDF has no text layer (a scan?); please send the invoice PDF from Mistral"


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[InProcessService]:
    with InProcessService(settings_for(database_url, tmp_path / "data")) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
        yield running


def stax(service: InProcessService, *args: str) -> subprocess.CompletedProcess[str]:
    return run_stax(service.services.settings, *args)


def import_invoice(service: InProcessService, n: int, spec: Any) -> None:
    name = f"invoice-{n}.pdf"
    send(service.port, mail_with([(name, render(spec), PDF)], message_id=f"<m{n}@acme.example>"))
    drain(service.services.db)


def as_if_an_older_parser_refused_it(db: Database, import_id: int) -> None:
    """History, not behaviour: the import as a parser that could not read its PDF would
    have left it (rejected, the file refused, nothing counted). Written straight into the
    rows because the parsers of this checkout read the PDF."""
    with db.write() as session:
        session.execute(delete(Document).where(Document.import_id == import_id))
        session.execute(
            update(Attachment)
            .where(Attachment.import_id == import_id, Attachment.outcome == "imported")
            .values(outcome="refused", reason=OLD_REFUSAL)
        )
        session.execute(
            update(Import)
            .where(Import.id == import_id)
            .values(status="rejected", reason=f"no document could be imported: {OLD_REFUSAL}")
        )


def as_if_older_rates_converted(db: Database, import_id: int) -> None:
    """History, not behaviour: the import's invoice as an older reading converted it, one
    cent more in USD on its first line. Written straight into the rows."""
    with db.write() as session:
        first_line = session.scalars(
            select(DocumentLine)
            .join(Document)
            .where(Document.import_id == import_id)
            .order_by(DocumentLine.id)
            .limit(1)
        ).one()
        assert first_line.amount_usd is not None
        first_line.amount_usd += Decimal("0.01")


def rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: the database's content."""
    with db.read() as session:
        return {
            table.name: [
                tuple(row)
                for row in session.execute(select(table).order_by(*table.primary_key.columns)).all()
            ]
            for table in Base.metadata.sorted_tables
        }


def report(db: Database) -> dict[str, Any]:
    with db.read() as session:
        return spend_report(session, "acme")


def test_a_dry_run_shows_what_would_change_and_changes_nothing_then_a_replay_reimports(
    service: InProcessService,
) -> None:
    db = service.services.db
    import_invoice(service, 1, OCTOBER)
    Jobs(
        db, service.services.settings, clock=lambda: utcnow() + timedelta(days=91)
    ).purge_raw_mail()
    import_invoice(service, 2, JANUARY)
    import_invoice(service, 3, US_OCTOBER)
    as_if_an_older_parser_refused_it(db, 3)
    before = rows(db)

    yesterday = f"{utcnow() - timedelta(days=1):%Y-%m-%d}"
    dry = stax(service, "replay", "--since", yesterday, "--dry-run", "--json")

    assert dry.returncode == 0, dry.stderr
    assert dry.stderr == ""  # no progress bar off a terminal
    document = json.loads(dry.stdout)
    assert document["dry_run"] is True
    results = {entry["id"]: entry for entry in document["imports"]}
    assert [entry["id"] for entry in document["imports"]] == [1, 2, 3]  # oldest first
    assert set(results[3]) == {
        "id",
        "received_at",
        "status",
        "result",
        "changes",
        "note",
        "next_status",
    }
    assert (results[1]["result"], results[1]["next_status"]) == ("raw mail purged", None)
    assert (results[2]["result"], results[2]["changes"]) == ("unchanged", [])
    assert results[3]["status"] == "rejected" and results[3]["result"] == "changed"
    assert results[3]["changes"] == [
        f"invoice-3.pdf: now read as invoice {US_OCTOBER.number} (was refused: {OLD_REFUSAL})"
    ]
    assert results[3]["next_status"] == "received"  # what a replay would do
    assert rows(db) == before

    replayed = stax(service, "replay", "--status", "rejected")

    assert replayed.returncode == 0, replayed.stderr
    assert f"changed: invoice-3.pdf: now read as invoice {US_OCTOBER.number}" in replayed.stdout
    assert "1 import: 1 changed, 1 went to received" in replayed.stdout
    drain(db)
    assert statuses(db) == ["imported", "imported", "imported"]
    with db.read() as session:
        event = session.scalars(
            select(ImportEvent).where(ImportEvent.import_id == 3).order_by(ImportEvent.id)
        ).all()[-3]
        numbers = session.scalars(select(Document.number).order_by(Document.id)).all()
    assert (event.from_status, event.to_status, event.actor) == ("rejected", "received", "replay")
    assert event.reason.startswith("replayed: the current parsers read it differently")
    assert sorted(numbers) == sorted([OCTOBER.number, JANUARY.number, US_OCTOBER.number])


def test_an_imported_import_read_differently_is_held_and_never_counted_twice(
    service: InProcessService,
) -> None:
    db = service.services.db
    import_invoice(service, 1, OCTOBER)
    import_invoice(service, 2, JANUARY)
    as_if_older_rates_converted(db, 1)
    as_if_older_rates_converted(db, 2)
    counted_before = report(db)

    replayed = stax(service, "replay", "--status", "imported", "--json")

    assert replayed.returncode == 0, replayed.stderr
    results = json.loads(replayed.stdout)["imports"]
    assert [(r["id"], r["result"], r["next_status"]) for r in results] == [
        (1, "changed", "held"),
        (2, "changed", "held"),
    ]
    [change] = results[0]["changes"]
    assert change.startswith(f"invoice {OCTOBER.number}: USD total ")
    assert statuses(db) == ["held", "held"]
    with db.read() as session:
        reason = session.get_one(Import, 1).reason or ""
    assert reason == f"replayed: the current parsers read it differently: {change}"
    assert report(db) == counted_before  # what was counted stays counted, once

    assert stax(service, "release", "1").returncode == 0  # the current reading replaces it
    rejected = stax(service, "reject", "2", "--reason", "Mistral cancelled this invoice.")
    assert rejected.returncode == 0, rejected.stderr
    drain(db)

    assert statuses(db) == ["imported", "rejected"]
    with db.read() as session:
        [document] = session.scalars(select(Document)).all()
        usd = sum((line.amount_usd or Decimal(0) for line in document.lines), Decimal(0))
    assert (document.import_id, document.number) == (1, OCTOBER.number)
    [october] = report(db)["months"]
    assert Decimal(october["total_usd"]) == usd.quantize(Decimal("0.01"))
    [old_october] = [m for m in counted_before["months"] if m["month"] == "2026-10"]
    assert Decimal(old_october["total_usd"]) - Decimal(october["total_usd"]) == Decimal("0.01")


def test_a_held_import_queued_again_by_a_replay_is_not_released(
    service: InProcessService,
) -> None:
    db = service.services.db
    import_invoice(service, 1, OCTOBER)
    corrected = dataclasses.replace(OCTOBER, rows=OCTOBER.rows[:-1])
    files = [("corrected.pdf", render(corrected), PDF), ("usd.pdf", render(US_OCTOBER), PDF)]
    send(service.port, mail_with(files, message_id="<m2@acme.example>"))
    drain(db)
    assert statuses(db) == ["imported", "held"]  # the same number with other content
    with db.write() as session:  # history: an older parser could not read the second PDF
        session.execute(
            update(Attachment)
            .where(Attachment.import_id == 2, Attachment.name == "usd.pdf")
            .values(outcome="refused", reason=OLD_REFUSAL)
        )
    counted_before = report(db)

    replayed = stax(service, "replay", "--id", "2")

    assert replayed.returncode == 0, replayed.stderr
    assert f"usd.pdf: now read as invoice {US_OCTOBER.number}" in replayed.stdout
    assert "1 went to received" in replayed.stdout
    drain(db)
    # decided afresh, not as if a person had accepted the conflict: held again, and the
    # first import's invoice is neither replaced nor counted twice
    assert statuses(db) == ["imported", "held"]
    with db.read() as session:
        [document] = session.scalars(select(Document)).all()
        reason = session.get_one(Import, 2).reason or ""
    assert document.import_id == 1
    assert f"invoice {OCTOBER.number} was imported before (import 1) with different" in reason
    assert report(db) == counted_before


def test_an_answer_on_a_thread_replayed_is_imported_and_forwarded_to_support_once(
    service: InProcessService,
) -> None:
    db = service.services.db
    import_invoice(service, 1, OCTOBER)
    [confirmation] = replies(service.services.settings.outbox_dir)
    answer = mail_with(
        [("forgot.pdf", render(JANUARY), PDF)],
        subject="Re: Mistral import",
        message_id="<answer@acme.example>",
        headers={"In-Reply-To": str(confirmation["Message-ID"])},
    )
    send(service.port, answer)
    drain(db)
    as_if_an_older_parser_refused_it(db, 2)

    replayed = stax(service, "replay", "--id", "2")

    assert replayed.returncode == 0, replayed.stderr
    drain(db)
    assert statuses(db) == ["imported", "imported"]
    to_support = [
        m
        for m in replies(service.services.settings.outbox_dir)
        if m["To"] == "support@stax.localhost"
    ]
    assert len(to_support) == 1  # support had the answer already; a re-run sends it no more
