"""Console benchmark: the ops console's pages with 10,000 imports in the queue.

`python -m ingest.cli serve` runs in a child process (STAX_WORKERS=0, so the queue stays as
it was filled) on a fresh SQLite file and on a throwaway PostgreSQL database. The queue is
filled straight into the tables by tests/support/queue_rows.py (10,000 imports over 40
accounts and every status, arrived over the last week), as the console tests do. Each page
is fetched over HTTP on loopback, once to warm up, then --rounds times; the figure is the
median and the slowest. The baseline of the same run is `/healthz`: the HTTP round trip and
the server, without the database or a template.

Target (issue 6): 10,000 imports render "in well under a second": every page's median under
0.25 s.

    .venv/bin/python benchmarks/console.py [--imports 10000] [--rounds 20] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import load_average, machine, postgres_database

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
TARGET_MEDIAN_S = 0.25
PAGES = (
    "/healthz",  # the baseline
    "/",  # the queue's first page: 50 imports, status counts, SLA time left
    "/?status=held",
    "/?account=account-7",
    "/?age=3d",
    "/?before=200",  # a page deep in the queue
    "/imports/{middle}",  # one import's page, halfway down the queue
    "/metrics",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def fill(url: str, count: int) -> float:
    """`count` imports straight into the tables; returns the seconds it took."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    from store.db import open_database
    from store.migrate import upgrade
    from support.queue_rows import Row, add_imports

    statuses = ["imported"] * 6 + ["duplicate", "rejected", "held", "quarantined", "received"]
    db = open_database(url)
    try:
        upgrade(db)
        started = time.perf_counter()
        add_imports(
            db,
            [
                Row(
                    statuses[i % len(statuses)],
                    age=timedelta(minutes=count - i),
                    account=f"account-{i % 40}",
                )
                for i in range(count)
            ],
        )
        return time.perf_counter() - started
    finally:
        db.dispose()


def serve(url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STAX_")},
        "STAX_DATA_DIR": str(data_dir),
        "STAX_DATABASE_URL": url,
        "STAX_SMTP_PORT": str(free_port()),
        "STAX_HTTP_PORT": str(port),
        "STAX_WORKERS": "0",
    }
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "serve"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}; see {log.name}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("serve did not start its console in time")


def time_pages(port: int, rounds: int, imports: int) -> dict[str, dict[str, float]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    figures = {}
    for page in PAGES:
        times = []
        for n in range(rounds + 1):
            started = time.perf_counter()
            connection.request("GET", page.format(middle=max(imports // 2, 1)))
            answer = connection.getresponse()
            body = answer.read()
            elapsed = time.perf_counter() - started
            if answer.status != 200 or not body:
                raise RuntimeError(f"GET {page}: {answer.status}")
            if n:  # the first is the warm-up
                times.append(elapsed)
        figures[page] = {
            "median_s": statistics.median(times),
            "max_s": max(times),
            "bytes": len(body),
        }
    connection.close()
    return figures


def measure(backend: str, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    data_dir = tmp / backend
    data_dir.mkdir()
    print(f"{backend}: filling {args.imports} imports ...", file=sys.stderr, flush=True)
    filled = fill(url, args.imports)
    port = free_port()
    process = serve(url, data_dir, port)
    try:
        pages = time_pages(port, args.rounds, args.imports)
    finally:
        process.terminate()
        process.wait(60)
    return {"backend": backend, "imports": args.imports, "fill_s": filled, "pages": pages}


def report(document: dict[str, Any]) -> str:
    host = document["machine"]
    out = [
        f"{host['date']}; {host['nproc']} CPUs ({host['cpu']}); Python {host['python']}; "
        f"load average {host['load_average']} at the start",
        "",
        "| page | "
        + " | ".join(f"{r['backend']} median ms | max ms" for r in document["runs"])
        + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in document["runs"]) + " |",
    ]
    for page in PAGES:
        cells = []
        for run in document["runs"]:
            figures = run["pages"][page]
            cells.append(f"{figures['median_s'] * 1000:.1f} | {figures['max_s'] * 1000:.1f}")
        out.append(f"| `{page}` | " + " | ".join(cells) + " |")
    out.append("")
    for run in document["runs"]:
        worst = max((f["median_s"], page) for page, f in run["pages"].items() if page != "/healthz")
        met = "met" if worst[0] < TARGET_MEDIAN_S else "MISSED"
        out.append(
            f"{run['backend']}: slowest page {worst[1]} median {worst[0] * 1000:.0f} ms "
            f"(target < {TARGET_MEDIAN_S * 1000:.0f} ms): {met}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    document: dict[str, Any] = {"machine": machine(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="stax-console-") as folder:
        tmp = Path(folder)
        sqlite_url = f"sqlite:///{tmp / 'stax-import.db'}"
        document["runs"].append(measure("sqlite", sqlite_url, tmp, args))
        if not args.no_postgres:
            with postgres_database() as url:  # store.db picks psycopg for postgresql://
                document["runs"].append(measure("postgres", url, tmp, args))
    document["machine"]["load_average_end"] = load_average()
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    print(report(document), file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
