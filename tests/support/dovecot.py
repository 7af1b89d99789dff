"""A real Dovecot on loopback for the IMAP tests: a config of the suite's own, free ports, one
user per test, a self-signed certificate for imaps, and doveadm for what a client cannot do."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from support.service import free_port

PASSWORD = "s3cret"
USERS = 64  # passwd-file is re-read lazily after a change: write every user up front
NOBODY = 65534

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/users
  default_fields = uid={nobody} gid={nobody} home={dir}/mail/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""


def _must_run() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_dovecot() -> None:
    """Skip with a reason where Dovecot cannot run here; under CI=true, fail instead."""
    problem = None
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        problem = "dovecot is not installed (apt-get install dovecot-imapd)"
    elif shutil.which("openssl") is None:
        problem = "openssl is not installed (apt-get install openssl)"
    elif os.geteuid() != 0:
        problem = "Dovecot must be started as root (it drops privileges itself)"
    if problem is None:
        return
    if _must_run():
        pytest.fail(f"CI is set, so the IMAP tests may not skip: {problem}")
    pytest.skip(problem)


@dataclass(frozen=True)
class Mailbox:
    """One Dovecot user's mail, seen as a person's mail client sees it."""

    server: Dovecot
    user: str

    def url(self, folder: str = "INBOX", *, tls: bool = False, port: int | None = None) -> str:
        scheme = "imaps" if tls else "imap"
        port = port or (self.server.tls_port if tls else self.server.port)
        return f"{scheme}://{self.user}:{PASSWORD}@127.0.0.1:{port}/{folder}"

    @contextmanager
    def client(self) -> Iterator[IMAPClient]:
        client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=10)
        client.login(self.user, PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[bytes] = ()) -> None:
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw, flags=flags)

    def append_many(self, messages: Sequence[bytes], folder: str = "INBOX") -> None:
        """Several messages in a row on one connection, as a burst of mail arrives."""
        with self.client() as client:
            for raw in messages:
                client.append(folder, raw)

    def messages(self, folder: str = "INBOX") -> list[tuple[bytes, tuple[bytes, ...]]]:
        """(raw bytes, flags) of every message in `folder`, by UID; [] where it does not exist."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
            return [(fetched[u][b"BODY[]"], fetched[u][b"FLAGS"]) for u in sorted(fetched)]

    def count(self, folder: str = "INBOX") -> int:
        """How many messages `folder` holds (0 where it does not exist), cheaply."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate(self, folder: str) -> None:
        """Delete the folder and create it again: a new UIDVALIDITY, UIDs from 1 again."""
        self.server.doveadm("mailbox", "delete", "-u", self.user, folder)
        self.server.doveadm("mailbox", "create", "-u", self.user, folder)


class Dovecot:
    """`dovecot -F` as a child process, on two free loopback ports (imap and imaps)."""

    def __init__(self) -> None:
        # Not under pytest's 0700 tmp: Dovecot's mail processes run as nobody and must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="stax-dovecot-"))
        self.dir.chmod(0o755)
        self.port, self.tls_port = free_port(), free_port()
        self.config = self.dir / "dovecot.conf"
        self.ca_file = self.dir / "cert.pem"
        self._process: subprocess.Popen[bytes] | None = None
        self._next_user = 0

    def start(self, timeout: float = 20) -> None:
        for sub in ("mail", "run", "state"):
            (self.dir / sub).mkdir()
        os.chown(self.dir / "mail", NOBODY, NOBODY)
        users = "".join(f"user{n:02d}:{{PLAIN}}{PASSWORD}::::::\n" for n in range(USERS))
        (self.dir / "users").write_text(users)
        self._certificate()
        self.config.write_text(
            CONFIG.format(dir=self.dir, nobody=NOBODY, port=self.port, tls_port=self.tls_port)
        )
        with open(self.dir / "stdout.log", "ab") as out:
            self._process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config)], stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        for port in (self.port, self.tls_port):
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"dovecot exited: {self.log_tail()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot is not listening: {self.log_tail()}") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def mailbox(self) -> Mailbox:
        """A user of its own for each test, with an empty INBOX."""
        if self._next_user >= USERS:
            raise RuntimeError(f"more than {USERS} mailboxes asked of one Dovecot")
        user = f"user{self._next_user:02d}"
        self._next_user += 1
        return Mailbox(self, user)

    def doveadm(self, *args: str) -> None:
        subprocess.run(
            ["doveadm", "-c", str(self.config), *args], check=True, capture_output=True, timeout=30
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.dir / "dovecot.log").read_text(errors="replace")
            text += (self.dir / "stdout.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1; tests trust it through `imap_ca_file`."""
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(self.dir / "key.pem"), "-out", str(self.ca_file),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    require_dovecot()
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.stop()
