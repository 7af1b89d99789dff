"""Kill -9 during intake (RELIABILITY.md, Intake): 200 messages from clients that retry as an MTA
would, the service SIGKILLed twice mid-run and restarted on the same port and data. Afterwards
every message that got a 250 is stored exactly once with one import, and the work the killed
processes left behind (received, or claimed under a lease) resumes and drains."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Executable, func, select

from store.db import Database, open_database
from store.models import Import, ImportEvent, InboundMessage
from store.states import FINAL, Status
from support.mail import IMPORT_ADDRESS, message
from support.service import ChildService, free_port

MESSAGES = 200
CLIENTS = 8
KILL_AFTER_ACKS = (60, 130)  # SIGKILL once this many messages have had their 250
RUN_SECONDS = 45.0  # every message must have its 250 within this, kills and restarts included
DRAIN_SECONDS = 20.0  # then no import may stay received or processing longer than this
CLAIM_WAIT = 2.0  # at most this long after its threshold, a kill waits for a claim in hand
LEASE_SECONDS = 2  # imports claimed by a killed process come back after this
LOST_REPLY_EVERY = 10  # every 10th message: the client ignores its first 250 and sends again
SMTP_TIMEOUT = 10.0  # a client gives up on a silent server after this, and retries
RETRY_PAUSE = (0.05, 0.2)  # seconds between attempts, jittered
SENDER = "finance@customer.example"
IN_FLIGHT = (Status.RECEIVED.value, Status.PROCESSING.value)


def message_id(n: int) -> str:
    return f"<test-{n}@customer.example>"  # what support.mail.message(n) writes


class PermanentFailure(AssertionError):
    """The service answered 5xx: a message an MTA would bounce, so the test fails."""


class DeadlinePassed(AssertionError):
    """A message did not get its 250 within RUN_SECONDS."""


@dataclass
class Ledger:
    """What the clients saw: which Message-IDs got a 250, and how often they had to retry."""

    acked: set[str] = field(default_factory=set)  # Message-IDs that got their 250
    retries: Counter[str] = field(default_factory=Counter)  # why an attempt had to be repeated
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def ack(self, mid: str) -> None:
        with self._changed:
            self.acked.add(mid)
            self._changed.notify_all()

    def retry(self, why: str) -> None:
        with self._changed:
            self.retries[why] += 1

    def count(self) -> int:
        with self._changed:
            return len(self.acked)

    def wait_for(self, acks: int, deadline: float) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self.acked) >= acks, timeout=max(deadline - time.monotonic(), 0)
            )


class RetryingSender:
    """One SMTP client thread: keeps a session open across messages, as an MTA does, and repeats
    a message until it gets a 250. A 4xx, a refused or dropped connection or a timeout means
    "try again shortly"; a 5xx means the message would bounce, which fails the test."""

    def __init__(self, port: int, ledger: Ledger, deadline: float, abort: threading.Event) -> None:
        self._port = port
        self._ledger = ledger
        self._deadline = deadline
        self._abort = abort
        self._client: smtplib.SMTP | None = None
        self._lost_once: set[int] = set()

    def send_all(self, take: Callable[[], int | None]) -> None:
        try:
            while (n := take()) is not None:
                self._send(n)
        finally:
            self._drop()

    def _send(self, n: int) -> None:
        raw = message(n)
        attempts, last = 0, "none"
        while True:
            if time.monotonic() > self._deadline:
                raise DeadlinePassed(
                    f"message {n} had no 250 after {RUN_SECONDS} s: {attempts} attempts, "
                    f"the last ended with {last}"
                )
            if self._abort.is_set():
                raise RuntimeError("stopped: another thread of the test failed")
            attempts += 1
            try:
                code, text = self._transaction(raw)
            except smtplib.SMTPResponseException as exc:  # e.g. 421 in the greeting
                code, text = exc.smtp_code, exc.smtp_error
                self._drop()
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                last = f"connection {type(exc).__name__}: {exc}"
                self._retry(f"connection {type(exc).__name__}")
                continue
            except TimeoutError:
                last = "timeout"
                self._retry("timeout")
                continue
            last = f"{code} {text!r}"
            if code == 250 and n % LOST_REPLY_EVERY == 0 and n not in self._lost_once:
                # As if this 250 were lost on the way: the client cannot know the message is
                # stored, so it drops the session and sends the same bytes again.
                self._lost_once.add(n)
                self._retry("250 lost (simulated)")
                continue
            if code == 250:
                self._ledger.ack(message_id(n))
                return
            if 400 <= code < 500:
                self._reset()
                self._retry(f"{code}")
                continue
            raise PermanentFailure(f"message {n}: {code} {text!r}")

    def _transaction(self, raw: bytes) -> tuple[int, bytes | str]:
        """MAIL, RCPT, DATA; the reply that decides, or the first one that is not a success."""
        if self._client is None:
            client = smtplib.SMTP("127.0.0.1", self._port, timeout=SMTP_TIMEOUT)
            self._client = client
            code, text = client.ehlo("client.example")
            if code != 250:
                return code, text
        client = self._client
        code, text = client.mail(SENDER)
        if code != 250:
            return code, text
        code, text = client.rcpt(IMPORT_ADDRESS)
        if code not in (250, 251):
            return code, text
        try:
            return client.data(raw)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (not 354)
            return exc.smtp_code, exc.smtp_error

    def _retry(self, why: str) -> None:
        self._drop()
        self._ledger.retry(why)
        time.sleep(random.uniform(*RETRY_PAUSE))

    def _reset(self) -> None:
        """After a 4xx the session may be reused (RSET); if it is gone, start a new one."""
        if self._client is None:
            return
        try:
            code, _ = self._client.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(OSError):
            client.close()


def _service(database_url: str, data_dir: Path, log_path: Path) -> ChildService:
    return ChildService(
        {
            "STAX_DATA_DIR": str(data_dir),
            "STAX_DATABASE_URL": database_url,
            "STAX_SMTP_PORT": str(free_port()),
            "STAX_LOG_LEVEL": "INFO",
            "STAX_WORKERS": "1",
            "STAX_WORKER_IDLE_POLL_SECONDS": "0.1",
            "STAX_LEASE_SECONDS": str(LEASE_SECONDS),
            # A lost attempt goes back to the queue with the retry backoff (30 s by default);
            # keep it short so that the requeued import is processed within DRAIN_SECONDS.
            "STAX_RETRY_BACKOFF_SECONDS": "0.5",
        },
        log_path,
    )


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _log_events(path: Path) -> Counter[str]:
    events: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            events[str(record.get("event"))] += 1
    return events


def _in_flight(db: Database) -> dict[int, str]:
    """Imports still waiting for a worker or held by one: id -> status."""
    with db.read() as session:
        rows = session.execute(
            select(Import.id, Import.status).where(Import.status.in_(IN_FLIGHT))
        ).all()
    return {import_id: status for import_id, status in rows}


def _claimed(db: Database) -> bool:
    with db.read() as session:
        return (
            session.scalar(
                select(Import.id).where(Import.status == Status.PROCESSING.value).limit(1)
            )
            is not None
        )


def _claims(
    history: Iterable[Sequence[Any]],
) -> tuple[list[tuple[int, str]], list[int], list[tuple[int, str, str]]]:
    """Walk each import's events: (claims requeued by the lease reaper, with their owner;
    imports still claimed at the end; claims ended by an actor other than their owner)."""
    lost: list[tuple[int, str]] = []
    still_open: list[int] = []
    wrong: list[tuple[int, str, str]] = []
    owner: dict[int, str] = {}
    for import_id, to_status, actor in history:
        holder = owner.pop(import_id, None)
        if holder is not None and actor == "lease-reaper":
            lost.append((import_id, holder))
        elif holder is not None and actor != holder:
            wrong.append((import_id, holder, actor))
        if to_status == Status.PROCESSING.value:
            owner[import_id] = actor
    still_open.extend(owner)
    return lost, still_open, wrong


@pytest.mark.slow
def test_sigkill_twice_mid_run_loses_nothing_and_stores_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "serve.log"
    service = _service(database_url, tmp_path / "data", log_path)
    ledger = Ledger()

    queue = list(range(MESSAGES))
    queue_lock = threading.Lock()

    def take() -> int | None:
        with queue_lock:
            return queue.pop(0) if queue else None

    kills: list[int] = []  # acknowledgements counted at each SIGKILL
    killed_pids: list[int] = []
    left_behind: list[dict[int, str]] = []  # per kill: imports left received or processing
    abort = threading.Event()  # set when one thread failed: the others stop too

    def killer() -> None:
        for threshold in KILL_AFTER_ACKS:
            while not ledger.wait_for(threshold, time.monotonic() + 0.2):
                if abort.is_set() or time.monotonic() > deadline:
                    return  # the clients failed or ran out of time; they say why
            # Strike while the worker holds a claim, the moment a lease exists for: with the
            # backlog it works through this takes milliseconds; after CLAIM_WAIT kill anyway.
            until = time.monotonic() + CLAIM_WAIT
            while not _claimed(db) and time.monotonic() < until:
                time.sleep(0.001)
            assert service.process is not None
            killed_pids.append(service.process.pid)
            service.kill()
            kills.append(ledger.count())
            # What it left; on PostgreSQL a COMMIT it had sent may still land after this.
            left_behind.append(_in_flight(db))
            service.start()

    db = open_database(database_url)  # connects lazily: the service's bootstrap makes the schema
    try:
        service.start()
        started = time.monotonic()
        deadline = started + RUN_SECONDS
        with ThreadPoolExecutor(CLIENTS + 1, thread_name_prefix="crash-test") as pool:
            futures = [pool.submit(killer)] + [
                pool.submit(RetryingSender(service.port, ledger, deadline, abort).send_all, take)
                for _ in range(CLIENTS)
            ]
            done, _ = wait(futures, timeout=RUN_SECONDS + 30, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed or len(done) < len(futures):
                abort.set()
                for future in failed or futures:
                    future.result(timeout=SMTP_TIMEOUT + 5)  # raises the first failure
        sent_seconds = time.monotonic() - started

        # In-flight work resumes: the restarted worker takes what was left received, and the
        # imports the killed process had claimed come back once their lease has passed.
        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while (waiting := _in_flight(db)) and time.monotonic() < drain_deadline:
            time.sleep(0.1)
        assert not waiting, (
            f"{len(waiting)} imports still received or processing {DRAIN_SECONDS} s after the "
            f"run: {waiting}\n{_log_tail(log_path)}"
        )

        exit_code = service.terminate()
        assert exit_code == 0, f"serve exited with {exit_code} on SIGTERM\n{_log_tail(log_path)}"
        total_seconds = time.monotonic() - started

        with db.read() as session:

            def pairs(statement: Executable) -> dict[Any, Any]:
                return {key: value for key, value in session.execute(statement)}

            stored = Counter(
                pairs(
                    select(InboundMessage.message_id, func.count()).group_by(
                        InboundMessage.message_id
                    )
                )
            )
            hashes = pairs(select(InboundMessage.message_id, InboundMessage.sha256))
            imports_per_message = pairs(
                select(InboundMessage.id, func.count(Import.id))
                .outerjoin(Import, Import.inbound_id == InboundMessage.id)
                .group_by(InboundMessage.id)
            )
            status_of = pairs(select(Import.id, Import.status))
            history = session.execute(
                select(ImportEvent.import_id, ImportEvent.to_status, ImportEvent.actor).order_by(
                    ImportEvent.import_id, ImportEvent.id
                )
            ).all()
    except BaseException:
        if service.process is not None and service.process.poll() is None:
            service.kill()
        print(f"service log ({log_path}), last lines:\n{_log_tail(log_path)}")
        raise
    finally:
        db.dispose()

    assert len(kills) == 2, f"expected two kills mid-run, got acks at kills {kills}"
    assert all(acks < MESSAGES for acks in kills), f"a kill came after the run: {kills}"
    everything = {message_id(n) for n in range(MESSAGES)}
    assert ledger.acked == everything, f"no 250 for {sorted(everything - ledger.acked)}"

    # Every acknowledged message is stored, exactly once, with the bytes that were sent; a
    # message sent again after a lost 250 is no exception.
    missing = sorted(ledger.acked - set(stored))
    assert not missing, f"acknowledged but not stored: {missing}"
    twice = {mid: count for mid, count in stored.items() if count > 1}
    assert not twice, f"stored more than once: {twice}"
    strangers = sorted(set(stored) - everything)
    assert not strangers, f"stored but never sent: {strangers}"
    wrong_bytes = [
        n
        for n in range(MESSAGES)
        if hashes[message_id(n)] != hashlib.sha256(message(n)).hexdigest()
    ]
    assert not wrong_bytes, f"stored bytes differ from those sent for messages {wrong_bytes}"

    # Every stored message has exactly one import, and every import reached a verdict; the
    # default pipeline holds everything, so nothing is quarantined or still in flight.
    not_one = {inbound: n for inbound, n in imports_per_message.items() if n != 1}
    assert not not_one, f"messages without exactly one import: {not_one}"
    assert len(status_of) == MESSAGES
    verdicts = {s.value for s in FINAL} | {Status.HELD.value}
    undecided = {i: s for i, s in status_of.items() if s not in verdicts}
    assert not undecided, f"imports outside final-or-held: {undecided}"
    # ...including those the killed processes left behind. Every claim ended with its own
    # worker's verdict or, when that worker was killed, with the lease reaper's requeue; and
    # each import got exactly one verdict (no import was processed to the end twice).
    lost_claims, open_claims, wrong_hands = _claims(history)
    assert not open_claims, f"claims never finished nor requeued: {open_claims}"
    assert not wrong_hands, f"claims ended by someone other than their worker: {wrong_hands}"
    requeued_after_kill = {
        i for i, owner in lost_claims if int(owner.split(":")[-2]) in killed_pids
    }
    assert requeued_after_kill == {i for i, _ in lost_claims}, (
        f"a live worker's claim was requeued: {lost_claims}, killed pids {killed_pids}"
    )
    seen_processing = {
        i for snapshot in left_behind for i, s in snapshot.items() if s == Status.PROCESSING.value
    }
    assert seen_processing <= requeued_after_kill, "claimed by a killed worker, never requeued"
    verdict_events = Counter(i for i, to, _ in history if to in verdicts)
    several = {i: n for i, n in verdict_events.items() if n != 1}
    assert not several, f"imports with several verdicts: {several}"
    assert set(verdict_events) == set(status_of), "imports without a verdict in their history"

    events = _log_events(log_path)
    assert events["redelivery"] >= MESSAGES // LOST_REPLY_EVERY
    print(
        f"\n{database_url.split(':', 1)[0]}: {MESSAGES} acked in {sent_seconds:.1f} s "
        f"({total_seconds:.1f} s with drain and stop); kills at acks {kills}; "
        f"left behind by the kills {[dict(Counter(s.values())) for s in left_behind]}; "
        f"claims lost in a kill and requeued {sorted(lost_claims)} "
        f"(seen processing at the kills {sorted(seen_processing)}); "
        f"client retries {dict(ledger.retries)}; "
        f"log: accepted {events['accepted']}, redelivery {events['redelivery']}; "
        f"statuses {Counter(status_of.values())}"
    )
