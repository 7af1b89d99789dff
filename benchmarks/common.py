"""What the benchmarks share: the machine they ran on, and a throwaway PostgreSQL database."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import secrets
from collections.abc import Iterator
from pathlib import Path

PG_ADMIN = os.environ.get("STAX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A database of a random name, dropped afterwards."""
    import psycopg

    name = f"stax_bench_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": load_average(),  # at the start; other tenants' work shows here
    }


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
