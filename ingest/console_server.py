"""Serves the console with uvicorn on the running event loop, until asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_SECONDS = 10.0
GRACE_SECONDS = 5.0  # requests in flight get this long to finish when the service stops


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `serve` owns SIGTERM/SIGINT and stops the console with everything else.
        yield


class ConsoleServer:
    """A console being served: its bound port, and `stop()`."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self._server, self._task, self.port = server, task, port

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


async def serve_console(app: ASGIApp, host: str, port: int) -> ConsoleServer:
    """Bind host:port (0 picks a free port), start serving, return once it listens. A port
    that cannot be bound raises OSError here, at start, not later in a background task."""
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # the service's logging stays as configured
        log_level="warning",  # uvicorn's start/stop lines are not the service's log
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(GRACE_SECONDS),
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="ops-console")
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # its exception, if it had one
            raise RuntimeError("the ops console stopped while starting")
        if asyncio.get_running_loop().time() > deadline:
            server.should_exit = True
            raise RuntimeError("the ops console did not start listening in time")
        await asyncio.sleep(0.01)
    return ConsoleServer(server, task, int(sock.getsockname()[1]))


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
