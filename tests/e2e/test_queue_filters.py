"""Ops narrow the queue to one account and to imports older than an age: the real service
on SQLite and PostgreSQL, and `stax-import queue` in a child process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.accept import Door, Envelope
from store.accounts import add_account
from store.types import utcnow
from support.cli import stax as run_stax
from support.importing import drain, mail_with, send
from support.service import InProcessService, settings_for


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[InProcessService]:
    with InProcessService(settings_for(database_url, tmp_path / "data")) as running:
        with running.services.db.write() as session:
            add_account(session, "acme", ["finance@acme.example"], [])
            add_account(session, "globex", ["ap@globex.example"], [])
        yield running


def stax(service: InProcessService, *args: str) -> subprocess.CompletedProcess[str]:
    return run_stax(service.services.settings, *args)


def test_the_queue_narrows_to_an_account_and_an_age(service: InProcessService) -> None:
    db = service.services.db
    three_days_ago = utcnow() - timedelta(days=3)
    door = Door(db, 100 * 1024, clock=lambda: three_days_ago)
    old = mail_with([], message_id="<old@acme.example>")
    door.accept(old.as_bytes(), "cli", Envelope("", ()))
    service.services.work_waiting.set()
    send(service.port, mail_with([], message_id="<new@acme.example>"))
    send(service.port, mail_with([], sender="ap@globex.example", message_id="<g@globex.example>"))
    drain(db)

    def ids(*args: str) -> list[int]:
        result = stax(service, "queue", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [entry["id"] for entry in json.loads(result.stdout)["imports"]]

    assert ids() == [1, 2, 3]
    assert ids("--account", "acme") == [1, 2]
    assert ids("--older-than", "2d") == [1]
    assert ids("--older-than", "90m", "--account", "globex") == []
    assert ids("--account", "globex", "--status", "rejected") == [3]
    table = stax(service, "queue", "--account", "acme", "--older-than", "4h")
    assert table.returncode == 0 and "SLA LEFT" in table.stdout
    assert len(table.stdout.splitlines()) == 2  # the header and the old import
