"""A relay for the service's replies: a real aiosmtpd server on loopback that keeps what it
accepts, and can defer the first DATA commands (451) or hold a DATA until it is let go."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from support.service import free_port


class Sink:
    def __init__(self, port: int, defer: int = 0) -> None:
        self.port = port
        self.defer = defer
        self.attempts = 0
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()  # set: each DATA waits for `release` before its answer
        self.holding = threading.Event()  # a DATA is waiting now
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold.is_set():
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        with self.lock:
            self.attempts += 1
            if self.attempts <= self.defer:
                return "451 4.3.0 Try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Queued"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [m for _, _, m in self.received]


@contextmanager
def running_sink() -> Iterator[Sink]:
    handler = Sink(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        handler.release.set()
        controller.stop()
