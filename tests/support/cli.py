"""`stax-import` as ops run it: a child process on the same data as a test's service."""

from __future__ import annotations

import os
import subprocess
import sys

from config.settings import Settings


def stax(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(settings.data_dir), STAX_DATABASE_URL=settings.database_url)
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
