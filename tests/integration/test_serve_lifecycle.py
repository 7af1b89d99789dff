"""`stax-import serve` stops cleanly on SIGTERM and SIGINT, keeping every acknowledged mail."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import time
from pathlib import Path

import pytest

from store.db import open_database
from store.queue import list_imports
from support.mail import IMPORT_ADDRESS, deliver, message
from support.service import ChildService, free_port


def child(database_url: str, tmp_path: Path) -> ChildService:
    port = free_port()
    env = {
        "STAX_DATA_DIR": str(tmp_path / "data"),
        "STAX_DATABASE_URL": database_url,
        "STAX_SMTP_PORT": str(port),
        "STAX_WORKER_IDLE_POLL_SECONDS": "0.1",
    }
    return ChildService(env, tmp_path / "serve.log")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_intake_and_exits_0(
    database_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    service = child(database_url, tmp_path)
    service.start()
    assert deliver(service.port, message(1))[0] == 250
    # a session in the middle of a transaction when the signal comes
    client = smtplib.SMTP("127.0.0.1", service.port, timeout=30)
    client.ehlo("client.example")
    client.mail("finance@customer.example")
    client.rcpt(IMPORT_ADDRESS)
    assert service.process is not None
    os.kill(service.process.pid, signum)
    assert service.process.wait(60) == 0, (tmp_path / "serve.log").read_text()
    client.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", service.port), timeout=2).close()
    db = open_database(database_url)
    with db.read() as session:
        imports = list_imports(session)
        # acknowledged mail is there, and the worker finished it before the exit
        assert [i.inbound.message_id for i in imports] == ["<test-1@customer.example>"]
        assert imports[0].status == "held"
        first_id = imports[0].id
    db.dispose()
    lines = [
        json.loads(line)
        for line in (tmp_path / "serve.log").read_text().splitlines()
        if line.startswith("{")
    ]
    processed = next(line for line in lines if line["event"] == "processed")
    # every line about an import carries its id and Message-ID
    assert processed["import_id"] == first_id
    assert processed["message_id"] == "<test-1@customer.example>"
    assert lines[-1]["event"] == "stopped"


def test_serve_picks_up_mail_waiting_from_before(database_url: str, tmp_path: Path) -> None:
    service = child(database_url, tmp_path)
    path = tmp_path / "waiting.eml"
    path.write_bytes(message(2))
    import subprocess
    import sys

    env = service.env
    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "ingest", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    service.start()
    db = open_database(database_url)
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        with db.read() as session:
            status = list_imports(session)[0].status
        if status == "held":
            break
        time.sleep(0.1)
    assert status == "held"
    assert service.terminate() == 0
    db.dispose()
