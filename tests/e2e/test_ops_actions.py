"""Ops act on the queue: release a held import, reject one with a reason the customer reads,
retry a quarantined one; commands exit 2 with a hint when the status does not allow it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.make_documents import SPECS, render
from ingest import ops_actions
from ingest.usage import UsageError
from store.accounts import add_account
from store.models import Document
from store.reports import spend_report
from support.importing import PDF, drain, mail_with, replies, send, statuses, text_of
from support.service import InProcessService, settings_for

INVOICE = SPECS["lago_en_eur"]


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[InProcessService]:
    with InProcessService(settings_for(database_url, tmp_path / "data")) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
        yield running


def test_released_correction_replaces_the_stored_invoice(service: InProcessService) -> None:
    db = service.services.db
    send(service.port, mail_with([("a.pdf", render(INVOICE), PDF)], message_id="<a@x>"))
    drain(db)  # the first version is in before the correction arrives
    corrected = dataclasses.replace(INVOICE, rows=INVOICE.rows[:-1])
    send(service.port, mail_with([("b.pdf", render(corrected), PDF)], message_id="<b@x>"))
    drain(db)
    assert statuses(db) == ["imported", "held"]

    ops_actions.release(service.services, 2)
    drain(db)
    assert statuses(db) == ["imported", "imported"]
    with db.read() as session:
        [document] = session.scalars(select(Document)).all()
        assert document.import_id == 2  # the corrected version, once
        month = spend_report(session, "acme")["months"][0]
    expected = sum((line.amount_usd or Decimal(0) for line in document.lines), Decimal(0))
    assert Decimal(month["total_usd"]) == expected


def test_rejecting_a_held_import_tells_the_customer_why(service: InProcessService) -> None:
    db = service.services.db
    send(service.port, mail_with([("a.pdf", render(INVOICE), PDF)], message_id="<a@x>"))
    drain(db)  # the first version is in before the correction arrives
    corrected = dataclasses.replace(INVOICE, rows=INVOICE.rows[:-1])
    send(service.port, mail_with([("b.pdf", render(corrected), PDF)], message_id="<b@x>"))
    drain(db)
    ops_actions.reject(service.services, 2, "This invoice was cancelled by Mistral.")
    drain(db)
    assert statuses(db) == ["imported", "rejected"]
    answers = [
        (r["X-Stax-Import-Id"], r["X-Stax-Import-Status"], r)
        for r in replies(service.services.settings.outbox_dir)
    ]
    # the held reply, then one follow-up when a person rejected it
    assert sorted((i, s) for i, s, _ in answers if i == "2") == [("2", "held"), ("2", "rejected")]
    [rejection] = [r for i, s, r in answers if s == "rejected"]
    assert "This invoice was cancelled by Mistral." in text_of(rejection)


def test_an_action_the_status_does_not_allow_is_refused(service: InProcessService) -> None:
    send(service.port, mail_with([("a.pdf", render(INVOICE), PDF)]))
    drain(service.services.db)
    with pytest.raises(UsageError, match="import 1 is imported"):
        ops_actions.release(service.services, 1)
    with pytest.raises(UsageError, match="no import 99"):
        ops_actions.retry(service.services, 99)


def test_retry_from_the_command_line_runs_a_quarantined_import_again(
    database_url: str, tmp_path: Path
) -> None:
    from datetime import timedelta

    from ingest.accept import Envelope
    from ingest.app import bootstrap
    from ingest.pipeline import ImportContext, Outcome, Pipeline
    from ingest.worker import Worker
    from store.queue import RetryPolicy
    from support.mail import message

    settings = settings_for(database_url, tmp_path / "data")
    services = bootstrap(settings)
    services.door.accept(message(1), "cli", Envelope("", ()))

    class Broken:
        name = "broken"

        def __call__(self, context: ImportContext) -> Outcome | None:
            raise RuntimeError("a parser bug")

    worker = Worker(services.db, Pipeline([Broken()]), RetryPolicy(1, 0), timedelta(minutes=5), "w")
    worker.run_once()
    assert statuses(services.db) == ["quarantined"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(settings.data_dir), STAX_DATABASE_URL=database_url)
    run = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "retry", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert statuses(services.db) == ["received"]
    again = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "release", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2
    assert again.stderr.startswith("error: import 1 is received (only a held import")
    services.db.dispose()
