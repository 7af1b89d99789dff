"""IMAP at the edge: mailbox URLs, and one connection to a folder (peek, move, IDLE)."""

from __future__ import annotations

import contextlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

# Leaving IDLE and logging out wait at most this long: a healthy server answers at once, and a
# stalled one must not hold up a shutdown for a whole socket timeout.
QUICK_TIMEOUT = 5.0
# idle_check() swallows the EOF of a closed connection and returns at once with nothing; a few
# such returns in a row, each well before its timeout, mean the server has gone.
EARLY_EMPTY_RETURNS = 3


@dataclass(frozen=True)
class MailboxAddress:
    """`imap://user:pass@host:port/FOLDER` or `imaps://…`, as in STAX_IMAP_URL."""

    tls: bool
    host: str
    port: int
    user: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> MailboxAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ValueError("an IMAP mailbox is imap[s]://user:pass@host[:port][/FOLDER]")
        tls = parts.scheme == "imaps"
        return cls(
            tls=tls,
            host=parts.hostname,
            port=parts.port or (993 if tls else 143),
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
        )

    @property
    def name(self) -> str:
        """How the store and the logs name the mailbox: no password, no transport."""
        return f"{self.user}@{self.host.lower()}/{self.folder}"


class MoveFailed(IMAPClientError):  # type: ignore[misc]
    """The server said OK to a move, yet the message is still there: the connection is in
    doubt, so the poller reconnects and tries again."""


@dataclass(frozen=True)
class Selected:
    uidvalidity: int
    uidnext: int


class ImapSession:
    """One logged-in connection with the mailbox's folder selected read-write. Every socket
    call has `timeout`; any failure leaves the session to be closed and opened again."""

    def __init__(self, address: MailboxAddress, timeout: float, ca_file: Path | None) -> None:
        self.address = address
        self._timeout = timeout
        context = None
        if address.tls:
            context = ssl.create_default_context()
            if ca_file is not None:
                context.load_verify_locations(cafile=str(ca_file))
        self._client: Any = IMAPClient(
            address.host, port=address.port, ssl=address.tls, ssl_context=context, timeout=timeout
        )
        self._client.login(address.user, address.password)
        self._folders: set[str] = set()
        self._early_empty = 0

    def select(self) -> Selected:
        """(Re)select the folder: its current UIDVALIDITY and UIDNEXT."""
        info = self._client.select_folder(self.address.folder)
        return Selected(int(info[b"UIDVALIDITY"]), int(info.get(b"UIDNEXT", 0)))

    def uids_after(self, uid: int) -> list[int]:
        # `n:*` always matches the highest UID, even when it is below n: filter it out.
        found = self._client.search(["UID", f"{uid + 1}:*"])
        return sorted(u for u in (int(x) for x in found) if u > uid)

    def present(self, uids: list[int]) -> set[int]:
        """Which of these UIDs are still in the folder."""
        if not uids:
            return set()
        return {int(u) for u in self._client.search(["UID", _uid_set(uids)])}

    def sizes(self, uids: list[int]) -> dict[int, int]:
        if not uids:
            return {}
        response = self._client.fetch(uids, ["RFC822.SIZE"])
        return {int(uid): int(data[b"RFC822.SIZE"]) for uid, data in response.items()}

    def peek(self, uid: int) -> bytes | None:
        """The raw message, fetched with BODY.PEEK[] so that \\Seen stays as a person left it;
        None when it is no longer there."""
        response = self._client.fetch([uid], ["BODY.PEEK[]"])
        data = response.get(uid)
        return None if data is None else cast(bytes, data[b"BODY[]"])

    def move(self, uid: int, folder: str) -> bool:
        """Move one message; False when it had already left the folder (a person moved or
        deleted it). UID MOVE where the server has it; else COPY, \\Deleted and UID EXPUNGE
        of this one UID, never a bare EXPUNGE (it would also remove mail a person marked
        deleted).

        A UID this connection has not been told of yet (another connection stored it while
        this one sat in IDLE) is skipped by MOVE and COPY with a plain OK (Dovecot does so):
        a NOOP first brings the connection's view up to date (a SEARCH would still answer
        from the old one), and a SEARCH after proves the message left, so "moved" is never
        recorded for mail still in the folder."""
        self._ensure_folder(folder)
        self._client.noop()
        if not self.present([uid]):
            return False
        if self.can_move():
            self._client.move([uid], folder)
        else:
            self._client.copy([uid], folder)
            self._client.add_flags([uid], [b"\\Deleted"], silent=True)
            if not self._client.has_capability("UIDPLUS"):
                # the original stays, marked \\Deleted, for the person's own expunge; the
                # ledger knows it has been moved
                return True
            self._client.uid_expunge([uid])
        if self.present([uid]):
            raise MoveFailed(f"UID {uid} is still in {self.address.folder} after the move")
        return True

    def can_move(self) -> bool:
        return bool(self._client.has_capability("MOVE"))

    def can_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    def idle(self) -> None:
        self._client.idle()
        self._early_empty = 0

    def wait(self, timeout: float) -> bool:
        """Wait in IDLE up to `timeout`; True when the server says a message arrived."""
        if self._buffered():
            return True  # something came in right behind "+ idling": look, whatever it is
        started = time.monotonic()
        responses = self._client.idle_check(timeout=timeout)
        if any(_is_exists(r) for r in responses):
            return True
        if any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses):
            raise ConnectionError("the server ended the session during IDLE")
        early = not responses and time.monotonic() - started < timeout / 2
        self._early_empty = self._early_empty + 1 if early else 0
        if self._early_empty >= EARLY_EMPTY_RETURNS:
            raise ConnectionError("the server closed the connection during IDLE")
        return False

    def _buffered(self) -> bool:
        """Has imaplib already read input that poll() on the socket cannot see? It reads
        ahead: an EXISTS the server sends right behind IDLE's "+ idling" (mail that came while
        we were busy) sits in its buffer, and idle_check() would wait for the next line."""
        sock = self._client.socket()
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        sock.setblocking(False)
        try:
            return bool(self._client._imap.file.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(self._timeout)

    def idle_done(self) -> None:
        self._client.socket().settimeout(min(self._timeout, QUICK_TIMEOUT))
        self._client.idle_done()
        self._client.socket().settimeout(self._timeout)

    def close(self) -> None:
        """Log out if the connection still answers; drop it in any case."""
        try:
            self._client.socket().settimeout(min(self._timeout, QUICK_TIMEOUT))
            self._client.logout()
        except (IMAPClientError, OSError):
            with contextlib.suppress(IMAPClientError, OSError):
                self._client.shutdown()

    def _ensure_folder(self, folder: str) -> None:
        if folder in self._folders:
            return
        if not self._client.folder_exists(folder):
            try:
                self._client.create_folder(folder)
            except IMAPClientError:
                if not self._client.folder_exists(folder):  # not another poller's doing
                    raise
        self._folders.add(folder)


def _is_exists(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def _uid_set(uids: list[int]) -> str:
    """`1:3,7,9:10`: a compact UID set for SEARCH."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)
