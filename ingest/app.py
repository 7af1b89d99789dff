"""The composition root: builds the services from the settings, and runs `serve`."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from config.settings import Settings
from ingest.accept import Door
from ingest.console import make_console
from ingest.console_auth import check_console_binding
from ingest.console_server import ConsoleServer, serve_console
from ingest.dispatcher import Dispatcher
from ingest.group_commit import GroupCommitter
from ingest.imap_poller import poller_threads
from ingest.jobs import Jobs, SchedulerLock, start_scheduler
from ingest.pipeline import Pipeline
from ingest.recipients import RecipientPolicy
from ingest.replying import Replies
from ingest.smtp import IntakeHandler, SmtpListener
from ingest.steps import (
    AuthenticateSender,
    FindFiles,
    IdentifyAccount,
    ReadDocuments,
    ReadMessage,
    ScreenSubject,
)
from ingest.threads import AnswerWithoutFiles, RecognizeThread, conversation
from ingest.verdict import Decide
from ingest.worker import Worker, worker_name
from notify.mailer import mailer_from_settings
from parsers.fx import Rates
from store.accounts import account_for_token
from store.db import Database, open_database
from store.migrate import upgrade
from store.queue import RetryPolicy

log = structlog.get_logger()


@dataclass
class Services:
    settings: Settings
    db: Database
    door: Door
    recipients: RecipientPolicy
    rates: Rates
    work_waiting: threading.Event = field(default_factory=threading.Event)
    mail_waiting: threading.Event = field(default_factory=threading.Event)


def bootstrap(settings: Settings) -> Services:
    """Open the database (creating the data folder and applying migrations) and wire the
    door. Every command starts here, so each works on a fresh STAX_DATA_DIR."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    upgrade(db)
    work_waiting = threading.Event()
    door = Door(db, settings.max_header_bytes, on_accepted=work_waiting.set)

    def token_known(token: str) -> bool:
        with db.read() as session:
            return account_for_token(session, token) is not None

    recipients = RecipientPolicy(settings.import_address, token_known)
    rates = Rates.load(settings.data_dir)
    return Services(settings, db, door, recipients, rates, work_waiting)


def default_pipeline(services: Services) -> Pipeline:
    """Read, screen, authenticate, find the account, find the files, read them, decide."""
    s = services.settings
    replies = Replies(s)
    return Pipeline(
        steps=(
            ReadMessage(),
            AuthenticateSender(s),
            RecognizeThread(services.db),
            ScreenSubject(replies),
            IdentifyAccount(services.db, s, services.recipients),
            FindFiles(),
            AnswerWithoutFiles(s),
            ReadDocuments(services.rates),
            Decide(services.db, replies, s.sla_calendar),
        )
    )


def build_workers(services: Services, pipeline: Pipeline) -> list[Worker]:
    s = services.settings
    policy = RetryPolicy(s.max_attempts, s.retry_backoff_seconds)
    return [
        Worker(
            services.db,
            pipeline,
            policy,
            timedelta(seconds=s.lease_seconds),
            worker_name(i),
            on_verdict=services.mail_waiting.set,
        )
        for i in range(s.workers)
    ]


class Service:
    """Everything `serve` runs, startable and stoppable on one event loop (tests use it
    in-process; `serve` adds the signal handling)."""

    def __init__(self, services: Services, pipeline: Pipeline) -> None:
        s = services.settings
        check_console_binding(s)  # before anything starts: no open console on the network
        self.services = services
        self._console_app = make_console(services, thread=conversation)
        self.console: ConsoleServer | None = None
        self._jobs = Jobs(services.db, s, rates=lambda: services.rates)
        self._scheduler_lock = SchedulerLock(services.db, s.data_dir)
        self._scheduler: BackgroundScheduler | None = None
        self._committer = GroupCommitter(services.door)
        self._handler = IntakeHandler(self._committer, services.recipients)
        self.listener = SmtpListener(
            self._handler,
            s.smtp_host,
            s.smtp_port,
            s.smtp_max_sessions,
            s.smtp_max_message_bytes,
            s.smtp_session_timeout_seconds,
            hostname=_hostname(s.import_address),
        )
        self._stop_workers = threading.Event()
        dispatcher = Dispatcher(
            services.db, mailer_from_settings(s.outbound_smtp_url, s.outbox_dir)
        )
        self._threads = [
            threading.Thread(
                target=dispatcher.run,
                args=(self._stop_workers, services.mail_waiting, s.worker_idle_poll_seconds),
                name="outbox",
                daemon=True,
            )
        ] + [
            threading.Thread(
                target=w.run,
                args=(self._stop_workers, services.work_waiting, s.worker_idle_poll_seconds),
                name=w.name,
                daemon=True,
            )
            for w in build_workers(services, pipeline)
        ]
        # one IMAP poller per configured mailbox; they stop with the workers
        self._threads += poller_threads(s, services.db, services.door, self._stop_workers)

    async def start(self) -> None:
        for thread in self._threads:
            thread.start()
        await self.listener.start()
        s = self.services.settings
        self.console = await serve_console(self._console_app, s.http_host, s.http_port)
        if self._scheduler_lock.acquire():  # one process of several runs the jobs
            self._scheduler = start_scheduler(self._jobs, s)
        log.info(
            "ready",
            smtp_port=self.listener.port,
            http_port=self.console.port,
            scheduler=self._scheduler is not None,
            workers=len(self._threads),
            database=self.services.db.url.render_as_string(hide_password=True),
        )

    async def stop(self) -> None:
        """Stop accepting, let messages being committed get their 250, finish the imports
        in hand, then close the database."""
        loop = asyncio.get_running_loop()
        log.info("stopping: no new sessions; finishing in-flight work")
        await self.listener.stop()
        if self.console is not None:
            await self.console.stop()
        if self._scheduler is not None:
            await loop.run_in_executor(None, self._scheduler.shutdown)
        self._scheduler_lock.release()
        await loop.run_in_executor(None, self._committer.close)
        self._stop_workers.set()
        self.services.work_waiting.set()
        for thread in self._threads:
            await loop.run_in_executor(None, thread.join)
        self.services.db.dispose()
        log.info("stopped")


async def serve(services: Services, pipeline: Pipeline) -> None:
    """Run until SIGTERM or SIGINT; then stop accepting, finish in-flight work, return."""
    if services.settings.sender_auth == "none":
        log.warning(
            "STAX_SENDER_AUTH=none: senders are not authenticated; "
            "use authres or dkim in production"
        )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    service = Service(services, pipeline)
    await service.start()
    await stopping.wait()
    await service.stop()


def _hostname(import_address: str) -> str:
    return import_address.rpartition("@")[2] or socket.gethostname()
