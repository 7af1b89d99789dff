"""The ops console served for real on loopback (uvicorn on its own event loop in a thread),
and a small HTTP client that keeps the console's cookie and shows every answer as sent."""

from __future__ import annotations

import asyncio
import base64
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from starlette.types import ASGIApp

from ingest.console_server import ConsoleServer, serve_console


@contextmanager
def served(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve `app` on a free loopback port until the block ends; yields the port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="console-loop", daemon=True)
    thread.start()
    try:
        server: ConsoleServer = asyncio.run_coroutine_threadsafe(
            serve_console(app, host, 0), loop
        ).result(30)
        try:
            yield server.port
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str


class ConsoleClient:
    """One browser-like session: cookies kept, redirects not followed, bounded timeouts."""

    def __init__(self, port: int, password: str | None = None) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self._password = password

    def get(self, path: str) -> Answer:
        return self._send("GET", path, None)

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        return self._send("POST", path, urlencode(fields).encode())

    def _send(self, method: str, path: str, body: bytes | None) -> Answer:
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self._password is not None:
            secret = base64.b64encode(f"ops:{self._password}".encode()).decode()
            headers["Authorization"] = f"Basic {secret}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
            for value in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(value).items():
                    self.cookies[name] = morsel.value
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
        finally:
            connection.close()
