"""`ingest.cli` stays light: every parse child runs it again before reading a file."""

from __future__ import annotations

import subprocess
import sys

from ingest.cli import STATUSES
from store.states import Status

HEAVY = ("sqlalchemy", "pandas", "camelot", "starlette", "pydantic_settings", "ingest.app")


def test_importing_the_command_line_imports_none_of_the_service() -> None:
    # multiprocessing's forkserver runs the main module again in each parse child; whatever
    # ingest.cli imports at its top is paid again for every attachment read
    code = f"import sys, ingest.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_the_status_choices_are_the_state_machine_s() -> None:
    assert list(STATUSES) == [s.value for s in Status]
