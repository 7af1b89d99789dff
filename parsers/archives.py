"""Members out of zip archives, within bounds on count, size, ratio and paths."""

from __future__ import annotations

import io
import lzma
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

MIB = 1024 * 1024
_CHUNK = 64 * 1024
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_EOCD_SEARCH = 22 + 65535  # the record plus the longest archive comment
_CENTRAL_ENTRY_BUDGET = 4096  # bytes of central directory allowed per member
_DRIVE = re.compile(r"^[A-Za-z]:")
# What zipfile raises on bad data: a bad CRC, overlapping entries, an unknown version or
# compression method, corrupt deflate/bzip2/lzma streams, truncated headers.
_ZIP_ERRORS = (
    zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError, EOFError,
    LookupError, struct.error, zlib.error, lzma.LZMAError,
)  # fmt: skip
_OFFICE_MARKERS = frozenset({"[Content_Types].xml", "mimetype", "META-INF/manifest.xml"})

TOO_MANY = "a zip archive with too many files (we open at most {n})"
DAMAGED_ZIP = "a damaged zip archive"
TOO_LARGE_TOTAL = "zip archive too large when unpacked"
OUTSIDE = "a zip member outside the archive's folder"
ENCRYPTED = "a password-protected file in the zip"
TOO_LARGE = "a file in the zip too large when unpacked"
BOMB = "a file in the zip that unpacks to far more than its size (a zip bomb?)"
UNREADABLE = "a damaged file in the zip, or one packed in a way we cannot open"


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what one message's zip archives may unpack to."""

    max_members: int = 100
    max_member_bytes: int = 32 * MIB
    max_total_bytes: int = 64 * MIB  # for the whole message, all archives and winmail.dat
    max_ratio: int = 100
    max_depth: int = 2  # a zip inside a zip, and no deeper


@dataclass(frozen=True)
class Member:
    """One file of an archive: its bytes, or why it was not unpacked."""

    name: str  # the path inside the archive, as stored
    data: bytes
    refused: str | None = None


class Budget:
    """Bytes a message may still unpack, shared by all its archives."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def take(self, size: int) -> None:
        self.remaining -= size


class ArchiveRefused(Exception):
    """The archive as a whole is not opened; the message says why."""


def open_zip(data: bytes, limits: ZipLimits) -> zipfile.ZipFile:
    """The archive, once its directory is known to be small enough to read."""
    if _declared_entries(data) > limits.max_members:
        raise ArchiveRefused(TOO_MANY.format(n=limits.max_members))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ArchiveRefused(DAMAGED_ZIP) from exc
    if len(archive.infolist()) > limits.max_members:
        raise ArchiveRefused(TOO_MANY.format(n=limits.max_members))
    return archive


def is_office(archive: zipfile.ZipFile) -> bool:
    """Whether the zip is a Word, Excel, PowerPoint or OpenDocument file."""
    return any(name in _OFFICE_MARKERS for name in archive.namelist())


def read_members(archive: zipfile.ZipFile, limits: ZipLimits, budget: Budget) -> list[Member]:
    """Every file of the archive, each unpacked or refused with a reason."""
    members: list[Member] = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        refused = _refusal(info)
        if refused is None and budget.remaining <= 0:
            refused = TOO_LARGE_TOTAL
        if refused is not None:
            members.append(Member(info.filename, b"", refused))
            continue
        members.append(_unpack(archive, info, limits, budget))
    return members


def _refusal(info: zipfile.ZipInfo) -> str | None:
    path = info.filename.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path) or ".." in path.split("/"):
        return OUTSIDE
    if info.flag_bits & 0x1:
        return ENCRYPTED
    return None


def _unpack(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, budget: Budget
) -> Member:
    # The sizes in the headers are the sender's word: count what actually comes out.
    caps = (
        (max(info.compress_size, 1) * limits.max_ratio, BOMB),
        (limits.max_member_bytes, TOO_LARGE),
        (budget.remaining, TOO_LARGE_TOTAL),
    )
    limit = min(cap for cap, _ in caps)
    try:
        data = _read_capped(archive, info, limit)
    except _ZIP_ERRORS:
        return Member(info.filename, b"", UNREADABLE)
    if data is None:
        reason = next(why for cap, why in caps if cap == limit)
        budget.take(limit)
        return Member(info.filename, b"", reason)
    budget.take(len(data))
    return Member(info.filename, data)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """The member's bytes, or None as soon as more than `limit` come out."""
    chunks: list[bytes] = []
    total = 0
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _declared_entries(data: bytes) -> int:
    """How many members the end record announces, read before zipfile lists them all."""
    at = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if at < 0 or at + 22 > len(data):
        return 0  # zipfile will call it damaged
    entries: int
    directory_size: int
    entries, directory_size = struct.unpack_from("<HI", data, at + 10)
    if entries == 0xFFFF:
        entries = _zip64_entries(data, at)
    # The count can lie; the directory's size cannot without breaking the archive.
    return max(entries, directory_size // _CENTRAL_ENTRY_BUDGET)


def _zip64_entries(data: bytes, eocd: int) -> int:
    locator = eocd - 20
    if locator < 0 or data[locator : locator + 4] != _ZIP64_LOCATOR:
        return 0xFFFF
    record: int = struct.unpack_from("<Q", data, locator + 8)[0]
    if record + 40 > len(data):
        return 0xFFFF
    entries: int = struct.unpack_from("<Q", data, record + 32)[0]
    return entries
