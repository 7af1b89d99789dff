"""A TCP proxy on loopback that cuts or stalls the server's stream once, mid-message, so that
tests can see a client survive a connection reset or a silent server."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

Fault = Literal["cut", "stall"]


class _Link:
    """One proxied connection: a pump thread each way."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.cutting = threading.Event()
        self.pumps: list[threading.Thread] = []

    def cut(self, me: threading.Thread) -> None:
        """Reset both sides (RST, as a crashed server or a middlebox would): linger 0, wake the
        other pump without sending anything, and close once nobody else holds the sockets."""
        self.cutting.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
        for pump in self.pumps:
            if pump is not me:
                pump.join(5)
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.close()

    def drop(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
            with contextlib.suppress(OSError):
                sock.close()


class FaultyProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`. The first connection that carries more
    than `after_bytes` from the server gets the fault: "cut" resets both sides, "stall" stops
    forwarding and leaves the sockets open until the client gives up. Later connections pass
    through untouched."""

    def __init__(self, target: int, fault: Fault, after_bytes: int, port: int = 0) -> None:
        self._target, self._fault, self._after = target, fault, after_bytes
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.1)  # close() does not wake accept(): look up now and then
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._armed = True
        self.faults = 0  # how many times the fault struck
        self.connections = 0
        self._links: list[_Link] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._acceptor.join(5)
        with self._lock:
            links = list(self._links)
        for link in links:
            if not link.cutting.is_set():
                link.drop()
            for pump in link.pumps:
                pump.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            link = _Link(client, server)
            link.pumps = [
                threading.Thread(target=self._pump, args=(link, client, server, False)),
                threading.Thread(target=self._pump, args=(link, server, client, True)),
            ]
            with self._lock:
                self.connections += 1
                self._links.append(link)
            for pump in link.pumps:
                pump.daemon = True
                pump.start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket, watched: bool) -> None:
        forwarded = 0
        try:
            while not self._closed.is_set():
                data = source.recv(16384)
                if not data:
                    break
                if watched and forwarded + len(data) > self._after and self._strike():
                    sink.sendall(data[: max(self._after - forwarded, 0)])
                    self._apply(link)
                    return
                sink.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        if not link.cutting.is_set():
            link.drop()

    def _strike(self) -> bool:
        with self._lock:
            if not self._armed:
                return False
            self._armed = False
            self.faults += 1
            return True

    def _apply(self, link: _Link) -> None:
        if self._fault == "stall":
            self._closed.wait()  # silence until the test ends; the client must time out
            return
        link.cut(threading.current_thread())
