"""The progress bar: drawn in place on a terminal for long runs, nothing anywhere else."""

from __future__ import annotations

import os
import pty
import tty
from pathlib import Path

from ingest.progress import Progress


def drawn(total: int) -> str:
    controller, terminal = pty.openpty()
    tty.setraw(terminal)  # no newline translation: what was written is what is read
    with open(terminal, "w") as stream:
        progress = Progress("replay", total, stream)
        for done in range(1, total + 1):
            progress.show(done)
        progress.close()
    try:
        return os.read(controller, 65536).decode()
    except OSError:  # nothing was written before the terminal closed
        return ""
    finally:
        os.close(controller)


def test_a_long_run_redraws_one_line_on_a_terminal() -> None:
    text = drawn(40)
    assert text.startswith("\rreplay 1/40 [")
    assert text.count("\r") == 40 and text.count("\n") == 1
    assert text.endswith("\rreplay 40/40 [" + "#" * 30 + "] 100 %\n")


def test_a_short_run_draws_nothing() -> None:
    assert drawn(5) == ""


def test_off_a_terminal_nothing_is_written(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    with open(log, "w") as stream:
        progress = Progress("replay", 100, stream)
        for done in range(1, 101):
            progress.show(done)
        progress.close()
    assert log.read_text() == ""
