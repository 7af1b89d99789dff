"""Every real-world mail of ../shared/corpus/emails, handed to `stax-import ingest`, reaches a
definite status: none stuck, none quarantined by a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.app import bootstrap, default_pipeline
from ingest.worker import Worker
from store.queue import RetryPolicy
from support.importing import statuses
from support.service import settings_for

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "emails"
MAILS = (
    sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and not p.name.startswith(("LICENSE", "README", "NOTICE", "COPYING"))
    )
    if CORPUS.is_dir()
    else []
)


@pytest.mark.slow
@pytest.mark.skipif(not MAILS, reason=f"the shared corpus is not at {CORPUS}")
def test_every_corpus_mail_reaches_a_definite_status(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(STAX_DATA_DIR=str(tmp_path / "data"), STAX_DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "ingest", *map(str, MAILS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == len(MAILS)

    services = bootstrap(settings_for(database_url, tmp_path / "data"))
    worker = Worker(
        services.db,
        default_pipeline(services),
        RetryPolicy(1, 0),
        timedelta(minutes=5),
        "corpus-worker",
    )
    while worker.run_once():
        pass
    found = statuses(services.db)
    assert found and set(found) <= {"imported", "duplicate", "rejected", "held"}, found
    services.db.dispose()
