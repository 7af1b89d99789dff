"""Parsing in a child process with CPU, memory and wall-time limits (RELIABILITY.md)."""

from __future__ import annotations

import multiprocessing
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import structlog

from parsers.base import Document, Refused
from parsers.registry import FORMAT_MODULES

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10
    memory_bytes: int = 512 * MIB
    wall_seconds: float = 30.0


# forkserver: children start from a small clean server process that has already imported
# the parsers (pandas, camelot) and this module (with structlog: 40 ms a child otherwise),
# so a child costs milliseconds, and never inherit the service's threads or database
# connections, as a plain fork would.
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload([__name__, "parsers.registry", *FORMAT_MODULES])


Reader = Callable[[str, bytes], list[Document]]


def parse_in_child(
    name: str, data: bytes, limits: Limits = Limits(), reader: Reader | None = None
) -> list[Document]:
    """parse_file (or `reader`, a module-level function) in a child; a file that breaks a
    limit or the parser is refused with a reason, and costs the service only the child."""
    receiver, sender = _context.Pipe(duplex=False)
    child = _context.Process(target=_child, args=(sender, name, data, limits, reader), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(limits.wall_seconds):
            raise Refused(
                name,
                f"reading this file took longer than {limits.wall_seconds:g} "
                "seconds; it may be damaged or far larger than an invoice",
            )
        kind, payload = receiver.recv()
    except EOFError:
        kind, payload = "died", None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind == "ok":
        return payload  # type: ignore[no-any-return]
    if kind == "refused":
        raise Refused(name, payload)
    if kind == "memory":
        raise Refused(
            name,
            f"reading this file needed more than {limits.memory_bytes // MIB} "
            "MiB of memory; it may be damaged or far larger than an invoice",
        )
    if kind == "died":
        raise Refused(
            name,
            f"reading this file took more than {limits.cpu_seconds} s of CPU "
            "time or crashed the reader; it may be damaged",
        )
    raise ParserCrashed(f"{name}: {payload}")


class ParserCrashed(Exception):
    """A parser raised something other than Refused: a bug of ours, not the customer's.
    The worker retries and then quarantines, so ops see it."""


def _child(
    sender: Connection, name: str, data: bytes, limits: Limits, reader: Reader | None
) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    # The address space already holds the preloaded libraries (numpy and OpenBLAS reserve
    # hundreds of MiB they never touch), so the limit is on what parsing adds to it.
    ceiling = _address_space_in_use() + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    # stdout may be `parse --json`'s: a log line from a parser must never land there
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    from parsers.registry import parse_file

    result: tuple[str, Any]
    try:
        result = ("ok", (reader or parse_file)(name, data))
    except Refused as refusal:
        result = ("refused", refusal.reason)
    except MemoryError:
        result = ("memory", None)
    except Exception as exc:
        result = ("crashed", f"{type(exc).__name__}: {exc}")
    sender.send(result)
    sender.close()


def _address_space_in_use() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
