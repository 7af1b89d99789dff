"""`stax-import` as a user runs it: a child process, real files, exit codes and JSON."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import tty
from pathlib import Path

import pytest

from support.mail import message

QUEUE_KEYS = {
    "id",
    "received_at",
    "sender",
    "account",
    "subject",
    "status",
    "sla_due",
    "attempts",
    "reason",
}


@pytest.fixture
def run(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "fresh" / "data"  # does not exist yet: commands create it
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(data_dir), STAX_DATABASE_URL=database_url)

    def run(*args: str, stderr_on_a_terminal: bool = False) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ingest.cli", *args]
        if stderr_on_a_terminal:
            return _with_stderr_on_a_terminal(command, env)
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    return run


def _with_stderr_on_a_terminal(
    command: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run with stderr on a real pseudo-terminal (raw: no newline translation), as when ops
    run a command by hand; stdout stays a pipe."""
    controller, terminal = pty.openpty()
    tty.setraw(terminal)
    seen = bytearray()

    def drain_terminal() -> None:  # a full terminal buffer would block the child
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child and we have closed the terminal
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain_terminal, daemon=True)
    reader.start()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=terminal) as child:
        os.close(terminal)
        stdout, _ = child.communicate(timeout=120)
    reader.join(10)
    os.close(controller)
    return subprocess.CompletedProcess(command, child.returncode, stdout.decode(), seen.decode())


def test_db_upgrade_works_on_a_fresh_data_dir(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_ingest_then_queue_and_show(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = []
    for n in (1, 2):
        path = tmp_path / f"mail-{n}.eml"
        path.write_bytes(message(n))
        files.append(str(path))
    first = run("ingest", *files)
    assert first.returncode == 0, first.stderr
    lines = [line.split("\t") for line in first.stdout.splitlines()]
    assert [(status, name) for _, status, name in lines] == [
        ("received", files[0]),
        ("received", files[1]),
    ]
    again = run("ingest", files[0])
    assert again.stdout.split("\t")[0] == lines[0][0] and "already stored" in again.stdout

    queue = run("queue", "--json")
    assert queue.returncode == 0, queue.stderr
    imports = json.loads(queue.stdout)["imports"]
    assert len(imports) == 2 and set(imports[0]) == QUEUE_KEYS
    assert imports[0]["sender"] == "finance@customer.example"
    assert imports[0]["subject"] == "Mistral import #1"
    assert imports[0]["status"] == "received" and imports[0]["attempts"] == 0
    assert imports[0]["received_at"].endswith("Z") and imports[0]["sla_due"].endswith("Z")

    assert json.loads(run("queue", "--status", "held", "--json").stdout) == {"imports": []}
    table = run("queue")
    assert "Mistral import #2" in table.stdout and "STATUS" in table.stdout

    shown = run("show", lines[0][0], "--json")
    detail = json.loads(shown.stdout)
    assert detail["message_id"] == "<test-1@customer.example>"
    assert detail["source"] == "cli"
    assert [h["to"] for h in detail["history"]] == ["received"]
    assert "history:" in run("show", lines[0][0]).stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "999"), "error: no import 999 (stax-import queue lists them)"),
        (("show", "abc"), "error: argument ID: 'abc' is not an import id"),
        (("queue", "--status", "lost"), "error: argument --status: invalid choice"),
        (("queue", "--older-than", "4x"), "error: argument --older-than: '4x' is not an age"),
        (("queue", "--older-than", "-2d"), "error: argument --older-than: expected one argument"),
        (("queue", "--account", "nobody"), "error: no account 'nobody' (stax-import accounts"),
        (("replay",), "error: replay needs a selector (give --status, --since, --until or --id"),
        (("replay", "--json", "--dry-run"), "error: replay needs a selector"),
        (("replay", "--since", "2026-02-30"), "error: argument --since: '2026-02-30' is not a"),
        (("replay", "--until", "20260201"), "error: argument --until: '20260201' is not a date"),
        (("replay", "--status", "lost"), "error: argument --status: invalid choice"),
        (("replay", "--id", "7"), "error: no import 7 (stax-import queue lists them)"),
        (("replay", "--since", "2026-02-02", "--until", "2026-02-01"), "error: --since is after"),
        (("frobnicate",), "error: argument command: invalid choice"),
        (("ingest", "/nonexistent.eml"), "error: /nonexistent.eml: No such file"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(run, args, expected) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["ingest"], ["queue"], ["replay"], ["show"], ["db", "upgrade"]]
)
def test_every_command_has_help(run, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = run(*command, "--help")
    assert result.returncode == 0 and "usage: stax-import" in result.stdout


def test_replay_draws_its_progress_on_a_terminal_only(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = []
    for n in range(1, 8):
        path = tmp_path / f"mail-{n}.eml"
        path.write_bytes(message(n))
        files.append(str(path))
    assert run("ingest", *files).returncode == 0  # no worker runs: all stay received

    piped = run("replay", "--status", "received", "--json")
    assert piped.returncode == 0 and piped.stderr == ""
    results = json.loads(piped.stdout)["imports"]
    assert [(r["result"], r["next_status"]) for r in results] == [("skipped", None)] * 7

    on_terminal = run("replay", "--status", "received", "--json", stderr_on_a_terminal=True)
    assert on_terminal.returncode == 0
    assert json.loads(on_terminal.stdout) == {"dry_run": False, "imports": results}
    assert "\rreplay 1/7 [" in on_terminal.stderr and "\rreplay 7/7 [" in on_terminal.stderr
    assert on_terminal.stderr.endswith("100 %\n")
