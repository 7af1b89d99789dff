"""Ops run the queue from the console in a real headless Chromium: real imports arrive by
SMTP (one imported, two held by an invoice-number conflict, one quarantined by a parser bug),
and a person releases, rejects with a reason and retries by clicking; the page and the
database agree. Screenshots go to tests/artifacts/console/."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.make_documents import BROKEN, SPECS, render
from ingest.app import bootstrap, default_pipeline
from ingest.console import make_console
from ingest.pipeline import ImportContext, Outcome, Pipeline
from store.accounts import add_account
from support.browser import chromium_page, require_browser, screenshot
from support.console import served
from support.databases import throwaway_database
from support.importing import PDF, drain, mail_with, send, statuses
from support.service import InProcessService, settings_for

INVOICE = SPECS["lago_en_eur"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "console-queue.png"
REASON = "This invoice was cancelled by Mistral; send the credit note instead."


class ParserBug:
    """A step that fails the one message `<q@x>` while the bug is there, as a parser bug
    would; the fix is clearing `present`."""

    name = "parser bug"

    def __init__(self) -> None:
        self.present = threading.Event()
        self.present.set()

    def __call__(self, context: ImportContext) -> Outcome | None:
        if self.present.is_set() and context.message_id == "<q@x>":
            raise RuntimeError("a parser bug: list index out of range")
        return None


@pytest.fixture
def bug() -> ParserBug:
    return ParserBug()


@pytest.fixture
def service(tmp_path: Path, bug: ParserBug) -> Iterator[InProcessService]:
    require_browser()  # skip (or fail under CI) before any mail is sent
    with throwaway_database("sqlite", tmp_path) as url:
        settings = settings_for(url, tmp_path / "data", max_attempts=1)
        wiring = bootstrap(settings)
        pipeline = Pipeline([bug, *default_pipeline(wiring).steps])
        with InProcessService(settings, pipeline) as running:
            with running.services.db.write() as session:
                add_account(session, "acme", ["finance@acme.example"], [])
            yield running
        wiring.db.dispose()


def fill_the_queue(service: InProcessService) -> None:
    db, port = service.services.db, service.port
    send(port, mail_with([("invoice.pdf", render(INVOICE), PDF)], message_id="<a@x>"))
    drain(db)  # the first version is stored before the corrections arrive
    for n, rows in ((1, INVOICE.rows[:-1]), (2, INVOICE.rows[:-2])):
        corrected = render(dataclasses.replace(INVOICE, rows=rows))
        files = [(f"invoice-v{n + 1}.pdf", corrected, PDF)]
        if n == 1:
            files.append(("scan.pdf", BROKEN["scanned"](), PDF))
        send(
            port,
            mail_with(files, subject=f"Mistral import (correction {n})", message_id=f"<c{n}@x>"),
        )
        drain(db)
    other = render(SPECS["lago_en_usd"])
    send(
        port, mail_with([("usd.pdf", other, PDF)], subject="Mistral import USD", message_id="<q@x>")
    )
    drain(db)
    assert statuses(db) == ["imported", "held", "held", "quarantined"]


def click(page: Any, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def status_on(page: Any) -> str:
    return str(page.inner_text("#status"))


def test_ops_release_reject_and_retry_from_the_console(
    service: InProcessService, bug: ParserBug, tmp_path: Path
) -> None:
    fill_the_queue(service)
    db = service.services.db
    with (
        served(make_console(service.services)) as port,
        chromium_page(tmp_path / "profile") as page,
    ):
        base = f"http://127.0.0.1:{port}"
        page.goto(base + "/")
        assert page.inner_text('[data-status="held"] b') == "2"
        assert page.inner_text('[data-status="quarantined"] b') == "1"
        assert page.locator("#queue tbody tr").count() == 4
        queue_shot = screenshot(page, "01-queue")

        page.goto(base + "/imports/1")
        assert "invoice.pdf" in page.inner_text("#documents")
        screenshot(page, "02-imported-import")

        page.click('a[href="/"]')
        click(page, '#queue a[href="/imports/2"]')
        assert status_on(page) == "held"
        parts = page.inner_text("#attachments")
        assert "scan.pdf" in parts and "refused" in parts  # and why, in the next column
        screenshot(page, "03-held-import")
        click(page, "#release")
        assert page.inner_text(".notice").startswith("Released")
        drain(db)
        page.reload()
        assert status_on(page) == "imported"
        assert "released by ops" in page.inner_text("#history")
        screenshot(page, "04-released")

        page.goto(base + "/imports/3")
        page.fill("#reason", REASON)
        click(page, "#reject")
        assert page.inner_text(".notice").startswith("Rejected")
        drain(db)
        page.reload()
        assert status_on(page) == "rejected"
        assert REASON in page.inner_text("#history")
        assert "follow-up" in page.inner_text("#replies")
        screenshot(page, "05-rejected")

        page.goto(base + "/?status=quarantined")
        click(page, '#queue a[href="/imports/4"]')
        assert "a parser bug" in page.inner_text("#history")
        bug.present.clear()  # the fix is deployed
        click(page, "#retry")
        assert page.inner_text(".notice").startswith("Retried")
        drain(db)
        page.reload()
        assert status_on(page) == "imported"
        screenshot(page, "06-retried")

        page.goto(base + "/")
        assert page.inner_text('[data-status="held"] b') == "0"
        screenshot(page, "07-queue-after")

    assert statuses(db) == ["imported", "imported", "rejected", "imported"]
    if os.environ.get("STAX_UPDATE_DOCS_SCREENSHOT"):
        keep_for_the_docs(queue_shot)


def keep_for_the_docs(shot: Path) -> None:
    """The queue screenshot for docs/images, squeezed to a small palette."""
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:
        shutil.copyfile(shot, DOCS_SCREENSHOT)
        return
    with Image.open(shot) as image:
        image.convert("RGB").quantize(colors=64).save(DOCS_SCREENSHOT, optimize=True)
