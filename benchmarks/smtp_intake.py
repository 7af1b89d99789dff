"""SMTP intake benchmark: messages/s and final-dot-to-250 latency, service against a bare sink.

Three targets in one run, each server in a child process of its own so that the client
does not share a GIL with it:

  bare      an aiosmtpd handler that discards every message (the baseline)
  sqlite    `python -m ingest.cli serve` on a fresh SQLite file
  postgres  `python -m ingest.cli serve` on a throwaway PostgreSQL database

The service runs with STAX_WORKERS=0: this measures intake alone (SMTP, header checks,
group commit, the durable commit before the 250), not imports.

    .venv/bin/python benchmarks/smtp_intake.py [--messages 10000] [--sessions 20] [--size 5120]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only
IMPORT_ADDRESS = "import@stax.localhost"
PG_ADMIN = os.environ.get("STAX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATIO = 0.5  # the service on SQLite: at least half the bare handler's messages/s
TARGET_P99_MS = 500.0
REPLY_TIMEOUT = 60.0  # seconds for any one reply; a stuck server fails the run, not hangs it


# --- the bare baseline: runs in its own process (`--bare-sink PORT`)


def run_bare_sink(port: int) -> None:
    """An aiosmtpd server whose handler says 250 and forgets the message."""
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 OK: discarded"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        # The same options as the service's listener, so that only the handler differs.
        server = await loop.create_server(
            lambda: SMTP(
                Discard(),
                data_size_limit=32 * 1024 * 1024,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname="stax.localhost",
                ident="bare sink",
                loop=loop,
            ),
            HOST,
            port,
        )
        await stopping.wait()
        server.close()

    asyncio.run(main())


# --- servers under test


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ChildServer:
    """A server in a child process: started, waited for on its port, stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.argv, self.env, self.port, self.log_path = argv, env, port, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChildServer:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, cwd=ROOT, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not listen on {self.port} within 60 s:\n{self.log()}")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise RuntimeError(f"server ignored SIGTERM for 60 s:\n{self.log()}") from None
        if code != 0:
            raise RuntimeError(f"server exited with {code} after SIGTERM:\n{self.log()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


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


def count_stored(database_url: str) -> int:
    """Messages the service holds: every 250 must be a row."""
    query = "SELECT count(*) FROM inbound_messages"
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as c:
            return int(c.execute(query).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


# --- the client


def make_message(run: str, number: int, size: int) -> bytes:
    """A plain-text message of exactly `size` bytes as stored (CRLF line ends, the last one
    included), with a unique Message-ID and a line that starts with a dot."""
    head = (
        f"From: Bench <bench@example.test>\r\n"
        f"To: {IMPORT_ADDRESS}\r\n"
        f"Subject: intake benchmark {number}\r\n"
        f"Date: Mon, 06 Jan 2025 10:00:00 +0000\r\n"
        f"Message-ID: <bench-{run}-{number}@example.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f".a line that the client must dot-stuff\r\n"
    ).encode()
    filler = b"The quick brown fox jumps over the lazy dog; invoice line 0123456789.\r\n"
    body = bytearray(head)
    while len(body) + len(filler) <= size:
        body += filler
    body += b"x" * (size - len(body) - 2) + b"\r\n"
    return bytes(body)


def wire_body(message: bytes) -> bytes:
    """The message dot-stuffed, without its last CRLF: that one goes with the final dot."""
    lines = message.removesuffix(b"\r\n").split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


class SmtpError(Exception):
    pass


class Session:
    """One SMTP connection over asyncio streams, one command at a time (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Session:
        reader, writer = await asyncio.open_connection(HOST, port)
        session = cls(reader, writer)
        await session.expect("220")
        await session.command(b"EHLO bench.localhost", "250")
        return session

    async def reply(self) -> str:
        """The last line of a (possibly multi-line) reply."""
        while True:
            line = await asyncio.wait_for(self.reader.readline(), REPLY_TIMEOUT)
            if not line:
                raise SmtpError("server closed the connection")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text[3:4] != "-":
                return text

    async def expect(self, code: str) -> str:
        text = await self.reply()
        if not text.startswith(code):
            raise SmtpError(f"expected {code}, got {text!r}")
        return text

    async def command(self, line: bytes, code: str) -> str:
        self.writer.write(line + b"\r\n")
        return await self.expect(code)

    async def send(self, body: bytes) -> float:
        """One transaction; returns the seconds from writing the final dot to the 250."""
        await self.command(b"MAIL FROM:<bench@example.test>", "250")
        await self.command(f"RCPT TO:<{IMPORT_ADDRESS}>".encode(), "250")
        await self.command(b"DATA", "354")
        self.writer.write(body)
        await self.writer.drain()
        start = time.perf_counter()
        self.writer.write(b"\r\n.\r\n")
        await self.expect("250")
        return time.perf_counter() - start

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.command(b"QUIT", "221"), 5)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server process used in the phase
    client_cpu: float = 0.0


async def _send_all(session: Session, pending: Iterator[bytes], phase: Phase) -> None:
    for body in pending:  # shared by the sessions: each message goes to one of them
        phase.latencies.append(await session.send(body))


async def drive(
    port: int,
    sessions: int,
    messages: list[bytes],
    warmup: int,
    server_cpu: Callable[[], float] = lambda: 0.0,
) -> Phase:
    """Send `warmup` messages, then time the rest over `sessions` concurrent connections."""
    opened = await asyncio.gather(*(Session.open(port) for _ in range(sessions)))
    try:
        for batch in (messages[:warmup], messages[warmup:]):
            phase, pending = Phase(), iter(batch)
            cpu, client_cpu = server_cpu(), time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(_send_all(s, pending, phase) for s in opened))
            phase.seconds = time.perf_counter() - started
            phase.server_cpu = server_cpu() - cpu
            phase.client_cpu = time.process_time() - client_cpu
    finally:
        await asyncio.gather(*(s.close() for s in opened))
    return phase


# --- one target


@dataclass
class Result:
    target: str
    messages: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float  # per message, of the server process (PostgreSQL's own not counted)
    client_cpu_ms: float  # per message
    stored: int | None  # rows in the database afterwards (warm-up included)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def measure(name: str, server: ChildServer, args: argparse.Namespace, run: str) -> Result:
    total = args.warmup + args.messages
    messages = [wire_body(make_message(f"{run}-{name}", n, args.size)) for n in range(total)]
    with server:
        work = drive(server.port, args.sessions, messages, args.warmup, server.cpu_seconds)
        phase = asyncio.run(asyncio.wait_for(work, args.time_limit))
    if len(phase.latencies) != args.messages:
        raise RuntimeError(f"{name}: {len(phase.latencies)} replies for {args.messages}")
    ordered = sorted(phase.latencies)
    return Result(
        target=name,
        messages=args.messages,
        seconds=round(phase.seconds, 3),
        per_second=round(args.messages / phase.seconds, 1),
        p50_ms=round(percentile(ordered, 50) * 1000, 2),
        p99_ms=round(percentile(ordered, 99) * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
        server_cpu_ms=round(phase.server_cpu / args.messages * 1000, 2),
        client_cpu_ms=round(phase.client_cpu / args.messages * 1000, 2),
        stored=None,
    )


def run_bare(args: argparse.Namespace, tmp: Path, run: str) -> Result:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--bare-sink", str(port)]
    return measure("bare aiosmtpd", ChildServer(argv, {}, port, tmp / "bare.log"), args, run)


def run_service(name: str, args: argparse.Namespace, tmp: Path, run: str, url: str) -> Result:
    port, data_dir = free_port(), tmp / name
    env = {
        "STAX_DATA_DIR": str(data_dir),
        "STAX_DATABASE_URL": url,
        "STAX_SMTP_PORT": str(port),
        "STAX_HTTP_PORT": str(free_port()),
        "STAX_LOG_LEVEL": "WARNING",
        "STAX_WORKERS": "0",  # intake alone: nothing competes with the door for the database
        "STAX_SMTP_MAX_SESSIONS": str(max(50, args.sessions)),
    }
    argv = [sys.executable, "-m", "ingest.cli", "serve"]
    server = ChildServer(argv, env, port, tmp / f"{name}.log")
    result = measure(f"service + {name}", server, args, run)
    result.stored = count_stored(url)
    if result.stored != args.warmup + args.messages:
        raise RuntimeError(f"{name}: {result.stored} rows stored for {args.warmup + args.messages}")
    return result


# --- report


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
    }


def verdict(results: list[Result]) -> dict[str, Any]:
    bare, sqlite = results[0], results[1]
    ratio = sqlite.per_second / bare.per_second
    return {
        "sqlite_over_bare": round(ratio, 3),
        "throughput_met": ratio >= TARGET_RATIO,
        "p99_met": sqlite.p99_ms < TARGET_P99_MS,
        "postgres_over_bare": round(results[2].per_second / bare.per_second, 3)
        if len(results) > 2
        else None,
    }


def table(results: list[Result]) -> str:
    """A Markdown table, ready to paste into docs/benchmarks.md."""
    head = ("target", "msg/s", "p50 ms", "p99 ms", "max ms", "server CPU/msg", "client CPU/msg")
    rows = [head] + [
        (
            r.target,
            f"{r.per_second:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.server_cpu_ms:.2f} ms",
            f"{r.client_cpu_ms:.2f} ms",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    out = [
        line(
            [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
        )
        for row in rows
    ]
    out.insert(1, line(rule))
    return "\n".join(out)


def report(args: argparse.Namespace, host: dict[str, str], results: list[Result]) -> str:
    v = verdict(results)
    yes = {True: "met", False: "MISSED"}
    out = [
        f"{host['date']}; {host['nproc']} CPUs ({host['cpu']}); Python {host['python']}; "
        f"Linux {host['kernel']}",
        f"{args.messages} messages of {args.size} bytes over {args.sessions} sessions per "
        f"target, after {args.warmup} warm-up messages; latency = final dot to 250",
        "",
        table(results),
        "",
        f"service on SQLite / bare: {v['sqlite_over_bare']:.2f} "
        f"(target >= {TARGET_RATIO}: {yes[v['throughput_met']]})",
        f"service on SQLite p99: {results[1].p99_ms:.1f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms: {yes[v['p99_met']]})",
    ]
    if v["postgres_over_bare"] is not None:
        out.append(f"service on PostgreSQL / bare: {v['postgres_over_bare']:.2f} (no target)")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10000, help="timed messages per target")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions")
    parser.add_argument("--size", type=int, default=5120, help="message size in bytes")
    parser.add_argument("--warmup", type=int, default=200, help="untimed messages first")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds per target")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL target")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--bare-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.messages < 1 or args.sessions < 1 or args.size < 512 or args.warmup < 0:
        parser.error("need --messages >= 1, --sessions >= 1, --size >= 512, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_sink is not None:
        run_bare_sink(args.bare_sink)
        return 0
    host, run = machine(), secrets.token_hex(4)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="stax-bench-") as folder:
        tmp = Path(folder)
        print("bare aiosmtpd ...", file=sys.stderr, flush=True)
        results.append(run_bare(args, tmp, run))
        print("service on SQLite ...", file=sys.stderr, flush=True)
        sqlite_url = f"sqlite:///{tmp / 'sqlite' / 'stax-import.db'}"
        results.append(run_service("sqlite", args, tmp, run, sqlite_url))
        if not args.no_postgres:
            print("service on PostgreSQL ...", file=sys.stderr, flush=True)
            with postgres_database() as url:
                results.append(run_service("postgres", args, tmp, run, url))
    if args.json:
        document = {
            "machine": host,
            "parameters": {k: getattr(args, k) for k in ("messages", "sessions", "size", "warmup")},
            "results": [asdict(r) for r in results],
            "targets": verdict(results),
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report(args, host, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
