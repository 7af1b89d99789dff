"""A customer's answer to a confirmation joins the import's thread, goes to support, and gets
no automatic reply; attachments in it are imported as usual, in the same thread."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.make_documents import SPECS, render
from store.accounts import add_account
from support.console import ConsoleClient
from support.importing import PDF, drain, mail_with, replies, send, statuses
from support.service import InProcessService, settings_for

INVOICE = SPECS["lago_en_eur"]


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[InProcessService]:
    with InProcessService(settings_for(database_url, tmp_path / "data")) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
        yield running


def thread_json(service: InProcessService, key: str) -> dict[str, object]:
    settings = service.services.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(settings.data_dir), STAX_DATABASE_URL=settings.database_url)
    run = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "thread", key, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_an_answer_goes_to_support_in_the_thread_without_an_automatic_reply(
    service: InProcessService,
) -> None:
    db = service.services.db
    send(service.port, mail_with([("invoice.pdf", render(INVOICE), PDF)]))
    drain(db)
    [confirmation] = replies(service.services.settings.outbox_dir)
    answer = mail_with(
        [],
        subject=str(confirmation["Subject"]),
        message_id="<answer@acme>",
        headers={
            "In-Reply-To": str(confirmation["Message-ID"]),
            "References": f"<m1@acme.example> {confirmation['Message-ID']}",
        },
    )
    answer.set_content("Why is Codestral so high this month?")
    send(service.port, answer)
    drain(db)

    assert statuses(db) == ["imported", "rejected"]
    mails = replies(service.services.settings.outbox_dir)
    to_customer = [m for m in mails if m["To"] == "finance@acme.example"]
    to_support = [m for m in mails if m["To"] == "support@stax.localhost"]
    assert len(to_customer) == 1  # no automatic reply to the answer
    [forward] = to_support
    assert "import 1" in str(forward["Subject"])
    body = forward.get_body(("plain",))
    assert body is not None and "/imports/1" in body.get_content()
    attached = [p for p in forward.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert attached, "the customer's own message goes to support"

    thread = thread_json(service, "<answer@acme>")
    kinds = [(e["kind"], e["import_id"]) for e in thread["thread"]]  # type: ignore[index]
    assert kinds == [("inbound", 1), ("reply", 1), ("inbound", 2), ("support-forward", 2)]

    # support reads the same conversation on the answer's page of the service's own console
    page = ConsoleClient(service.console_port).get("/imports/2").text
    thread_table = page[page.index('<table id="thread">') :]
    thread_table = thread_table[: thread_table.index("</table>")]
    rows = thread_table.split("<tr")[2:]  # after the header row
    assert len(rows) == 4
    assert '<a href="/imports/1">1</a>' in rows[0] and "finance@acme.example" in rows[0]
    assert "support@stax.localhost" in rows[3]
    assert sum('class="this"' in row for row in rows) == 2  # the answer's own entries


def test_an_answer_with_a_new_invoice_imports_it_in_the_same_thread(
    service: InProcessService,
) -> None:
    db = service.services.db
    send(service.port, mail_with([("invoice.pdf", render(INVOICE), PDF)]))
    drain(db)
    [confirmation] = replies(service.services.settings.outbox_dir)
    other = dataclasses.replace(INVOICE, number="MIS-2026-000777")
    answer = mail_with(
        [("forgot.pdf", render(other), PDF)],
        subject="Re: Mistral import",
        message_id="<answer2@acme>",
        headers={"In-Reply-To": str(confirmation["Message-ID"])},
    )
    send(service.port, answer)
    drain(db)
    assert statuses(db) == ["imported", "imported"]
    thread = thread_json(service, "1")
    assert {e["import_id"] for e in thread["thread"]} == {1, 2}  # type: ignore[union-attr,index]
    to_customer = [
        m
        for m in replies(service.services.settings.outbox_dir)
        if m["To"] == "finance@acme.example"
    ]
    assert len(to_customer) == 1
