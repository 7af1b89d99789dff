"""End-to-end benchmark: from the final dot to the reply sent, and a backlog drained.

Everything runs against `python -m ingest.cli serve` in a child process, on loopback, with
the file outbox (no STAX_OUTBOUND_SMTP_URL). The mail is a customer's forward of a two-page
Lago usage invoice (40 rows, drawn by tests/fixtures/make_documents.py), each with an invoice
number of its own, from senders registered with `stax-import accounts add`.

  latency   SQLite, STAX_WORKERS left at its default (2). A baseline of one sender, then 10
            concurrent senders, each in a closed loop: send one mail, wait for its reply,
            send the next. Latency = from writing the final `\\r\\n.\\r\\n` to the reply's
            outbox row being committed as `sent` (seen by a reader polling every 20 ms);
            the `.eml` file's own write time is reported beside it.
  backlog   N invoice mails accepted over SMTP by the service with STAX_WORKERS=0, which is
            then stopped; the service is started again with its workers and timed from its
            launch until every import has a verdict and every reply is sent. On SQLite and
            on a throwaway PostgreSQL database with 2 workers, and the baseline of the same
            run: SQLite with 1 worker.

    .venv/bin/python benchmarks/end_to_end.py [--backlog 1000] [--rounds 10] [--json]
    .venv/bin/python benchmarks/end_to_end.py --profile   # adds a py-spy run of the drain
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from common import load_average, machine, postgres_database

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
IMPORT_ADDRESS = "import@stax.localhost"
SENDER_DOMAIN = "customer.example"
TARGET_P50_S, TARGET_P95_S, TARGET_PER_MINUTE = 1.0, 3.0, 300.0
ROWS = 40  # 23 rows on page 1, 17 and the totals on page 2
REPLIES_PER_SENDER = 15  # under the 20 replies per sender and hour of RELIABILITY.md
REPLY_TIMEOUT = 180.0  # seconds for any one SMTP reply or import reply
POLL_SECONDS = 0.02  # latency phase: how often the reader looks for sent replies
SERVE = (sys.executable, "-m", "ingest.cli", "serve")


# --- the documents and the mail


def invoice_number(n: int) -> str:
    return f"MIS-E2E0-202611-{n:05d}"


def render_invoice(n: int) -> bytes:
    """A two-page Lago usage invoice of October 2026 with its own number."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.make_documents import SPECS, render

    base = SPECS["lago_en_eur_3_pages"]
    spec = dataclasses.replace(
        base, rows=base.rows[:ROWS], number=invoice_number(n), pages=2, file="invoice.pdf"
    )
    return bytes(render(spec))


def page_count(pdf: bytes) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def render_all(count: int, folder: Path) -> list[Path]:
    """`count` invoices, drawn on every CPU (fpdf2 takes about 0.25 s each), once per run."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{invoice_number(n)}.pdf" for n in range(count)]
    workers = max(1, len(os.sched_getaffinity(0)))
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        for path, pdf in zip(
            paths, pool.map(render_invoice, range(count), chunksize=8), strict=True
        ):
            path.write_bytes(pdf)
    pages = page_count(paths[0].read_bytes())
    if pages != 2:
        raise RuntimeError(f"the invoice has {pages} pages, not 2")
    return paths


def sender(k: int) -> str:
    return f"ap{k:03d}@{SENDER_DOMAIN}"


def invoice_mail(run: str, n: int, from_address: str, pdf: bytes) -> bytes:
    """A customer's forward of invoice n, CRLF line ends, as it goes over the wire."""
    mail = EmailMessage()
    mail["From"] = f"Accounts Payable <{from_address}>"
    mail["To"] = IMPORT_ADDRESS
    mail["Subject"] = f"Fwd: Mistral import - invoice {invoice_number(n)}"
    mail["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    mail["Message-ID"] = message_id(run, n)
    mail.set_content("Hello,\n\nthe Mistral invoice of October is attached.\n\nAccounts Payable\n")
    mail.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
    return mail.as_bytes(policy=policy.SMTP)


def message_id(run: str, n: int) -> str:
    return f"<e2e-{run}-{n}@{SENDER_DOMAIN}>"


# --- the service in a child process


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def service_env(data_dir: Path, url: str, port: int, workers: int | None) -> dict[str, str]:
    """The environment of `serve`: none of the caller's STAX_ settings, ours only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(
        STAX_DATA_DIR=str(data_dir),
        STAX_DATABASE_URL=url,
        STAX_SMTP_PORT=str(port),
        STAX_HTTP_PORT=str(free_port()),
        STAX_LOG_LEVEL="WARNING",
    )
    if workers is not None:  # None: the service's default
        env["STAX_WORKERS"] = str(workers)
    return env


def stax(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"stax-import {' '.join(argv[:2])}: {done.stderr.strip()}")
    return done.stdout


def default_workers() -> int:
    sys.path.insert(0, str(ROOT))
    from config.settings import Settings

    return int(Settings.model_fields["workers"].default)


class ChildService:
    """`serve` in a child process: started, waited for on its port, stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.port = int(env["STAX_SMTP_PORT"])
        self.process: subprocess.Popen[bytes] | None = None
        self.launched = 0.0
        self.ready = 0.0

    def __enter__(self) -> ChildService:
        self.launched = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                SERVE,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                self.ready = time.perf_counter()
                return self
            except OSError:
                time.sleep(0.02)
        self.process.kill()
        raise RuntimeError(f"serve did not listen on {self.port} within 60 s:\n{self.log()}")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise RuntimeError(f"serve ignored SIGTERM for 120 s:\n{self.log()}") from None
        if code != 0 and exc[0] is None:
            raise RuntimeError(f"serve exited with {code} after SIGTERM:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the service process (all its threads, not its children)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class Reader:
    """Read-only queries on the service's database, from the benchmark's process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            import psycopg

            self._pg = psycopg.connect(url, autocommit=True)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return list(self._sqlite.execute(query).fetchall())
        return list(self._pg.execute(query).fetchall())

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()

    def replies(self) -> list[tuple[str, str, str | None, str | None]]:
        """(Message-ID, import status, reply status, delivery) of every decided import."""
        return [
            (str(r[0]), str(r[1]), r[2], r[3])
            for r in self.rows(
                "SELECT m.message_id, i.status, o.status, o.last_error FROM imports i "
                "JOIN inbound_messages m ON m.id = i.inbound_id "
                "LEFT JOIN outbox o ON o.import_id = i.id AND o.purpose = 'reply' "
                "WHERE i.status NOT IN ('received', 'processing')"
            )
        ]

    def progress(self) -> tuple[int, int, int, int]:
        """(imports, imports without a verdict, replies pending, replies sent)."""
        [(imports, open_, pending, sent)] = self.rows(
            "SELECT (SELECT count(*) FROM imports), "
            "(SELECT count(*) FROM imports WHERE status IN ('received', 'processing')), "
            "(SELECT count(*) FROM outbox WHERE status = 'pending'), "
            "(SELECT count(*) FROM outbox WHERE status = 'sent')"
        )
        return int(imports), int(open_), int(pending), int(sent)

    def statuses(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self.rows("SELECT status, count(*) FROM imports GROUP BY status")
        }


# --- an SMTP client on asyncio streams, one command at a time


class SmtpError(Exception):
    pass


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Session:
        reader, writer = await asyncio.open_connection(HOST, port)
        session = cls(reader, writer)
        await session.expect("220")
        await session.command(b"EHLO bench.localhost", "250")
        return session

    async def expect(self, code: str) -> str:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)
            if not line:
                raise SmtpError("the server closed the connection")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text[3:4] != "-":
                break
        if not text.startswith(code):
            raise SmtpError(f"expected {code}, got {text!r}")
        return text

    async def command(self, line: bytes, code: str) -> str:
        self.writer.write(line + b"\r\n")
        return await self.expect(code)

    async def send(self, mail_from: str, message: bytes) -> tuple[float, float]:
        """One transaction; returns (perf_counter, wall clock) at the final dot."""
        await self.command(f"MAIL FROM:<{mail_from}>".encode(), "250")
        await self.command(f"RCPT TO:<{IMPORT_ADDRESS}>".encode(), "250")
        await self.command(b"DATA", "354")
        lines = message.removesuffix(b"\r\n").split(b"\r\n")
        self.writer.write(b"\r\n".join(b"." + x if x.startswith(b".") else x for x in lines))
        await self.writer.drain()
        at = (time.perf_counter(), time.time())
        self.writer.write(b"\r\n.\r\n")
        await self.expect("250")
        return at

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command(b"QUIT", "221"), 5)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


# --- latency: senders in closed loops, each waiting for its reply


@dataclass
class Latency:
    run: str
    senders: int
    mails: int  # timed; each sender's first mail is a warm-up, not timed
    p50_s: float
    p95_s: float
    max_s: float
    eml_p50_s: float  # to the .eml file's write time (its mtime), same mails
    eml_p95_s: float
    seconds: float  # wall time of the timed mails


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


class ReplyWatch:
    """Polls the database for decided imports and tells each waiting sender its reply."""

    def __init__(self, reader: Reader, outbox: Path) -> None:
        self.reader, self.outbox = reader, outbox
        self.waiting: dict[str, asyncio.Future[tuple[float, float]]] = {}

    def expect(self, mid: str) -> asyncio.Future[tuple[float, float]]:
        future: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.waiting[mid.strip("<>")] = future
        return future

    async def run(self) -> None:
        while True:
            if self.waiting:
                for mid, status, reply, delivery in self.reader.replies():
                    future = self.waiting.get(mid.strip("<>"))
                    if future is None or future.done():
                        continue
                    if reply == "pending":
                        continue
                    if status != "imported" or reply != "sent" or not delivery:
                        future.set_exception(
                            RuntimeError(f"{mid}: import {status}, reply {reply} ({delivery})")
                        )
                        continue
                    written = (self.outbox / delivery).stat().st_mtime
                    future.set_result((time.perf_counter(), written))
                    del self.waiting[mid.strip("<>")]
            await asyncio.sleep(POLL_SECONDS)


async def closed_loop(
    port: int,
    watch: ReplyWatch,
    address: str,
    mails: list[tuple[int, bytes]],
    samples: list[tuple[float, float]],
) -> None:
    session = await Session.open(port)
    try:
        for index, (_n, raw) in enumerate(mails):
            reply = watch.expect(message_id_of(raw))
            dot, wall = await session.send(address, raw)
            seen, written = await asyncio.wait_for(reply, REPLY_TIMEOUT)
            if index > 0:  # the first mail of each sender warms the service up
                samples.append((seen - dot, written - wall))
    finally:
        await session.close()


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")


async def latency_run(
    port: int, reader: Reader, outbox: Path, plan: dict[str, list[tuple[int, bytes]]]
) -> tuple[list[tuple[float, float]], float]:
    watch = ReplyWatch(reader, outbox)
    poller = asyncio.create_task(watch.run())
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    try:
        await asyncio.gather(
            *(closed_loop(port, watch, address, mails, samples) for address, mails in plan.items())
        )
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
    return samples, time.perf_counter() - started


def measure_latency(
    args: argparse.Namespace,
    tmp: Path,
    run: str,
    pdfs: list[Path],
) -> list[Latency]:
    """One sender (the baseline), then `--senders` concurrent ones, on one SQLite service."""
    data_dir = tmp / "latency"
    url = f"sqlite:///{data_dir / 'stax-import.db'}"
    env = service_env(data_dir, url, free_port(), None)
    # one more sender for the baseline: no sender gets more replies than the hourly limit
    senders = [sender(k) for k in range(args.senders + 1)]
    stax(env, "accounts", "add", "bench", *(f"--sender={s}" for s in senders))
    results: list[Latency] = []
    numbers = iter(range(len(pdfs)))
    with ChildService(env, data_dir.with_suffix(".log")) as service:
        reader = Reader(url)
        try:
            runs = (
                ("1 sender (baseline)", senders[args.senders :]),
                (f"{args.senders} concurrent senders", senders[: args.senders]),
            )
            for name, active in runs:
                plan = {
                    address: [
                        (n, invoice_mail(run, n, address, pdfs[n].read_bytes()))
                        for n in (next(numbers) for _ in range(args.rounds + 1))
                    ]
                    for address in active
                }
                print(f"latency: {name} ...", file=sys.stderr, flush=True)
                work = latency_run(service.port, reader, data_dir / "outbox", plan)
                samples, seconds = asyncio.run(asyncio.wait_for(work, args.time_limit))
                committed = sorted(s[0] for s in samples)
                written = sorted(s[1] for s in samples)
                results.append(
                    Latency(
                        run=name,
                        senders=len(active),
                        mails=len(samples),
                        p50_s=round(percentile(committed, 50), 3),
                        p95_s=round(percentile(committed, 95), 3),
                        max_s=round(committed[-1], 3),
                        eml_p50_s=round(percentile(written, 50), 3),
                        eml_p95_s=round(percentile(written, 95), 3),
                        seconds=round(seconds, 1),
                    )
                )
        finally:
            reader.close()
    return results


# --- backlog: accepted with no workers, then drained


@dataclass
class Backlog:
    backend: str
    workers: int
    mails: int
    accept_s: float  # SMTP intake of the backlog with STAX_WORKERS=0 (not in the rate)
    startup_s: float  # launch to listening
    verdicts_s: float  # launch to the last verdict
    drain_s: float  # launch to the last reply sent
    per_minute: float  # mails / drain_s * 60
    drained: bool
    machine_cpu_pct: float  # both CPUs busy = 100 %
    service_cpu_s_per_import: float  # the service process only: not the parse children
    statuses: dict[str, int] = field(default_factory=dict)
    replies_sent: int = 0


async def send_all(port: int, sessions: int, mails: list[tuple[str, bytes]]) -> None:
    pending = iter(mails)

    async def one() -> None:
        session = await Session.open(port)
        try:
            for address, raw in pending:
                await session.send(address, raw)
        finally:
            await session.close()

    await asyncio.gather(*(one() for _ in range(sessions)))


def measure_backlog(
    backend: str,
    url: str | None,
    workers: int,
    mails: int,
    args: argparse.Namespace,
    tmp: Path,
    run: str,
    pdfs: list[Path],
    profile: Path | None = None,
) -> Backlog:
    label = f"{backend}-{workers}w" + ("-profile" if profile else "")
    data_dir = tmp / label
    url = url or f"sqlite:///{data_dir / 'stax-import.db'}"
    senders = max(args.senders, math.ceil(mails / REPLIES_PER_SENDER))
    accept_env = service_env(data_dir, url, free_port(), 0)
    stax(accept_env, "accounts", "add", "bench", *(f"--sender={sender(k)}" for k in range(senders)))
    batch = [
        (
            sender(n % senders),
            invoice_mail(f"{run}-{label}", n, sender(n % senders), pdfs[n].read_bytes()),
        )
        for n in range(mails)
    ]
    print(f"backlog {label}: accepting {mails} mails ...", file=sys.stderr, flush=True)
    with ChildService(accept_env, tmp / f"{label}-accept.log") as door:
        started = time.perf_counter()
        asyncio.run(asyncio.wait_for(send_all(door.port, 10, batch), args.time_limit))
        accept_s = time.perf_counter() - started
    reader = Reader(url)
    try:
        imports, open_, _, _ = reader.progress()
        if imports != mails or open_ != mails:
            raise RuntimeError(f"{label}: {imports} imports stored for {mails} mails")
        print(f"backlog {label}: draining ...", file=sys.stderr, flush=True)
        env = service_env(data_dir, url, free_port(), workers)
        busy0, total0 = machine_busy()
        spy: subprocess.Popen[bytes] | None = None
        with ChildService(env, tmp / f"{label}.log") as service:
            if profile is not None:
                spy = start_py_spy(service.pid, profile)
            deadline = service.launched + args.time_limit
            verdicts_at = drained_at = None
            while time.perf_counter() < deadline:
                _, open_, pending, sent = reader.progress()
                now = time.perf_counter()
                if open_ == 0 and verdicts_at is None:
                    verdicts_at = now
                if open_ == 0 and pending == 0:
                    drained_at = now
                    break
                time.sleep(0.25)
            cpu = service.cpu_seconds()
            busy1, total1 = machine_busy()
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(60)
        end = drained_at or time.perf_counter()
        _, _, _, sent = reader.progress()
        statuses = reader.statuses()
    finally:
        reader.close()
    drain_s = end - service.launched
    done = statuses.get("imported", 0)
    return Backlog(
        backend=backend,
        workers=workers,
        mails=mails,
        accept_s=round(accept_s, 1),
        startup_s=round(service.ready - service.launched, 2),
        verdicts_s=round((verdicts_at or end) - service.launched, 1),
        drain_s=round(drain_s, 1),
        per_minute=round((mails if drained_at else done) / drain_s * 60, 1),
        drained=drained_at is not None,
        machine_cpu_pct=round(100 * (busy1 - busy0) / max(1.0, total1 - total0), 1),
        service_cpu_s_per_import=round(cpu / mails, 3),
        statuses=statuses,
        replies_sent=sent,
    )


# --- profile: where the drain's time goes


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    process = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "100"),
            *("--format", "raw", "--output", str(out), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach before the work starts in earnest
    return process


CATEGORIES = (  # (label, substring of a collapsed stack); the first that matches counts
    ("parse child: importing the service's main module again", "_fixup_main_from_"),
    ("parse child: reading the PDF (parse_file)", "parse_file"),
    ("parse child: start-up, limits, result", "forkserver.py"),
    ("worker: waiting for the parse child", "parse_in_child"),
    ("worker: decide (plan, store, reply, report)", "verdict.py"),
    ("worker: other pipeline steps (MIME, sender, account)", "pipeline.py"),
    ("worker: claim, load, finish", "worker.py"),
    ("outbox dispatcher", "dispatcher.py"),
    ("SMTP listener, start-up, other", ""),
)


def summarise_profile(path: Path) -> dict[str, Any]:
    """Share of py-spy's samples (100 Hz, active threads of the service and its children)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            label = next(label for label, key in CATEGORIES if key in stack)
            counts[label] += int(count)
    return {
        "samples": total,
        "shares": {label: round(100 * counts[label] / total, 1) for label, _ in CATEGORIES}
        if total
        else {},
    }


# --- report


def verdicts(latency: list[Latency], backlog: list[Backlog]) -> dict[str, Any]:
    concurrent_run = latency[-1] if latency else None
    rates = {f"{b.backend} {b.workers}w": b.per_minute for b in backlog}
    main = [b for b in backlog if b.workers == max(x.workers for x in backlog)] if backlog else []
    baseline = next((b for b in backlog if b.workers == 1), None)
    sqlite = next((b for b in main if b.backend == "sqlite"), None)
    return {
        "p50_met": concurrent_run.p50_s < TARGET_P50_S if concurrent_run else None,
        "p95_met": concurrent_run.p95_s < TARGET_P95_S if concurrent_run else None,
        "rate_met": {f"{b.backend}": b.drained and b.per_minute >= TARGET_PER_MINUTE for b in main},
        "rates_per_minute": rates,
        "two_workers_over_one": round(sqlite.per_minute / baseline.per_minute, 2)
        if sqlite and baseline and baseline.per_minute
        else None,
    }


def markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    table = [list(head), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    out = [line(r) for r in table]
    out.insert(1, "| " + " | ".join(rule) + " |")
    return "\n".join(out)


def report(document: dict[str, Any]) -> str:
    host, p = document["machine"], document["parameters"]
    latency = [Latency(**r) for r in document["latency"]]
    backlog = [Backlog(**r) for r in document["backlog"]]
    v = document["targets"]
    yes = {True: "met", False: "MISSED", None: "not measured"}
    out = [
        f"{host['date']}; {host['nproc']} CPUs ({host['cpu']}); Python {host['python']}; "
        f"Linux {host['kernel']}; load average {host['load_average']} at the start, "
        f"{host.get('load_average_end', '?')} at the end",
        f"two-page invoice ({ROWS} rows, {p['pdf_bytes']} bytes as PDF, {p['mail_bytes']} bytes "
        f"as mail); STAX_WORKERS={p['workers']} (the default) unless said; file outbox",
        "",
    ]
    if latency:
        out += [
            "Latency: final dot to the reply's outbox row committed as sent "
            f"(polled every {POLL_SECONDS * 1000:.0f} ms); .eml = to the reply file's write",
            "",
            markdown(
                ("run", "mails", "p50 s", "p95 s", "max s", ".eml p50 s", ".eml p95 s", "wall s"),
                [
                    (
                        r.run,
                        str(r.mails),
                        f"{r.p50_s:.2f}",
                        f"{r.p95_s:.2f}",
                        f"{r.max_s:.2f}",
                        f"{r.eml_p50_s:.2f}",
                        f"{r.eml_p95_s:.2f}",
                        f"{r.seconds:.0f}",
                    )
                    for r in latency
                ],
            ),
            "",
        ]
    if backlog:
        out += [
            "Backlog: accepted with STAX_WORKERS=0, then timed from the service's launch to "
            "the last reply sent",
            "",
            markdown(
                (
                    "backend",
                    "workers",
                    "mails",
                    "verdicts s",
                    "drained s",
                    "imports/min",
                    "machine CPU",
                    "service CPU/import",
                    "imported",
                    "replies sent",
                ),
                [
                    (
                        b.backend,
                        str(b.workers),
                        str(b.mails),
                        f"{b.verdicts_s:.0f}",
                        f"{b.drain_s:.0f}" + ("" if b.drained else " (time limit)"),
                        f"{b.per_minute:.0f}",
                        f"{b.machine_cpu_pct:.0f} %",
                        f"{b.service_cpu_s_per_import * 1000:.0f} ms",
                        str(b.statuses.get("imported", 0)),
                        str(b.replies_sent),
                    )
                    for b in backlog
                ],
            ),
            "",
        ]
    if document["latency"]:
        c = Latency(**document["latency"][-1])
        out.append(
            f"p50 {c.p50_s:.2f} s with {c.senders} senders (target < {TARGET_P50_S:g} s): "
            f"{yes[v['p50_met']]}"
        )
        out.append(f"p95 {c.p95_s:.2f} s (target < {TARGET_P95_S:g} s): {yes[v['p95_met']]}")
    for backend, met in v["rate_met"].items():
        rate = next(b["per_minute"] for b in document["backlog"] if b["backend"] == backend)
        out.append(
            f"{backend}: {rate:.0f} imports/min (target >= {TARGET_PER_MINUTE:g}): {yes[met]}"
        )
    if v["two_workers_over_one"] is not None:
        out.append(f"SQLite, 2 workers / 1 worker (the baseline): {v['two_workers_over_one']:.2f}")
    prof = document.get("profile")
    if prof:
        out += [
            "",
            f"py-spy over a drain of {prof['mails']} mails on SQLite "
            f"({prof['samples']} samples at 100 Hz, active threads of the service and "
            "its children):",
        ]
        out += [f"  {share:5.1f} %  {label}" for label, share in prof["shares"].items()]
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=1000, help="mails in the backlog")
    parser.add_argument(
        "--baseline-backlog", type=int, default=100, help="mails in the 1-worker baseline"
    )
    parser.add_argument("--senders", type=int, default=10, help="concurrent senders")
    parser.add_argument("--rounds", type=int, default=10, help="timed mails per sender")
    parser.add_argument("--time-limit", type=float, default=2400, help="seconds per phase")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    parser.add_argument("--no-backlog", action="store_true", help="skip the backlog phase")
    parser.add_argument(
        "--profile", action="store_true", help="also drain a backlog on SQLite under py-spy"
    )
    parser.add_argument("--profile-backlog", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds + 1 <= REPLIES_PER_SENDER:
        parser.error(f"--rounds must be between 0 and {REPLIES_PER_SENDER - 1}")
    sizes = (args.backlog, args.baseline_backlog, args.profile_backlog)
    if min(*sizes, args.senders) < 1:
        parser.error("every backlog size and --senders must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, run = machine(), secrets.token_hex(4)
    latency_mails = 0 if args.no_latency else args.senders * (args.rounds + 1) + args.rounds + 1
    backlog_mails = 0 if args.no_backlog else max(args.backlog, args.baseline_backlog)
    if args.profile:
        backlog_mails = max(backlog_mails, args.profile_backlog)
    document: dict[str, Any] = {
        "machine": host,
        "latency": [],
        "backlog": [],
        "profile": None,
    }
    with tempfile.TemporaryDirectory(prefix="stax-e2e-") as folder:
        tmp = Path(folder)
        print(
            f"drawing {max(latency_mails, backlog_mails)} invoices ...", file=sys.stderr, flush=True
        )
        pdfs = render_all(max(latency_mails, backlog_mails), tmp / "pdf")
        pdf = pdfs[0].read_bytes()
        document["parameters"] = {
            **{k: getattr(args, k) for k in ("backlog", "baseline_backlog", "senders", "rounds")},
            "workers": default_workers(),
            "rows": ROWS,
            "pdf_bytes": len(pdf),
            "mail_bytes": len(invoice_mail(run, 0, sender(0), pdf)),
        }
        if not args.no_latency:
            document["latency"] = [asdict(r) for r in measure_latency(args, tmp, run, pdfs)]
        if not args.no_backlog:
            workers = default_workers()
            runs = [measure_backlog("sqlite", None, workers, args.backlog, args, tmp, run, pdfs)]
            if not args.no_postgres:
                with postgres_database() as url:
                    runs.append(
                        measure_backlog(
                            "postgres", url, workers, args.backlog, args, tmp, run, pdfs
                        )
                    )
            runs.append(
                measure_backlog("sqlite", None, 1, args.baseline_backlog, args, tmp, run, pdfs)
            )
            document["backlog"] = [asdict(r) for r in runs]
        if args.profile:
            out = tmp / "py-spy.txt"
            measure_backlog(
                "sqlite", None, default_workers(), args.profile_backlog, args, tmp, run, pdfs, out
            )
            document["profile"] = {"mails": args.profile_backlog, **summarise_profile(out)}
    document["machine"]["load_average_end"] = load_average()
    document["targets"] = verdicts(
        [Latency(**r) for r in document["latency"]], [Backlog(**r) for r in document["backlog"]]
    )
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        print(report(document), file=sys.stderr)
    else:
        print(report(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
