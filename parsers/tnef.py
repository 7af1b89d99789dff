"""Files out of Outlook's winmail.dat (TNEF, MS-OXTNEF), read in one bounded linear pass."""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterator
from dataclasses import dataclass

SIGNATURE = b"\x78\x9f\x3e\x22"
_LEVEL_ATTACHMENT = 2
# Attribute ids (the low 16 bits; writers disagree on the type half, so it is ignored).
_OEM_CODEPAGE = 0x9007
_ATTACH_REND_DATA = 0x9002  # opens a new attachment
_ATTACH_TITLE = 0x8010
_ATTACH_DATA = 0x800F
_ATTACHMENT = 0x9005  # the attachment's MAPI properties
# MAPI property ids and types
_PR_DISPLAY_NAME = 0x3001
_PR_ATTACH_DATA_OBJ = 0x3701
_PR_ATTACH_FILENAME = 0x3704
_PR_ATTACH_LONG_FILENAME = 0x3707
_PR_ATTACH_MIME_TAG = 0x370E
_PT_OBJECT, _PT_STRING8, _PT_UNICODE, _PT_BINARY = 0x000D, 0x001E, 0x001F, 0x0102
_VARIABLE_TYPES = frozenset({0x0000, _PT_OBJECT, _PT_STRING8, _PT_UNICODE, _PT_BINARY})
_FIXED_SIZES = {
    0x0001: 0, 0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8,
    0x0007: 8, 0x000A: 4, 0x000B: 2, 0x0014: 8, 0x0040: 8, 0x0048: 16,
}  # fmt: skip
_MULTI_VALUE = 0x1000
_MAX_ATTRIBUTES = 50_000  # real streams have a few per attachment; this bounds a crafted one
_CODEPAGES = {65001: "utf-8", 20127: "ascii", 28591: "latin-1", 20866: "koi8-r"}
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class TnefError(ValueError):
    """The stream is not TNEF, is damaged, or would unpack to more than allowed."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class TnefFile:
    """One attachment carried inside a TNEF stream."""

    name: str  # the long file name where Outlook gave one; may be empty
    content_type: str  # PR_ATTACH_MIME_TAG, or empty
    data: bytes  # an attached Outlook message is itself a TNEF stream


@dataclass
class _Draft:
    long_name: str = ""
    title: str = ""
    short_name: str = ""
    display_name: str = ""
    content_type: str = ""
    data: memoryview | None = None

    def name(self) -> str:
        return self.long_name or self.title or self.short_name or self.display_name


def read_tnef(data: bytes, max_bytes: int) -> list[TnefFile]:
    """The attachments of a TNEF stream; raises TnefError past `max_bytes` unpacked."""
    view = memoryview(data)
    if bytes(view[:4]) != SIGNATURE:
        raise TnefError("not a TNEF stream")
    drafts: list[_Draft] = []
    codepage = "cp1252"
    for level, attribute, value in _attributes(view):
        if attribute == _OEM_CODEPAGE and len(value) >= 4:
            codepage = _codec(_U32.unpack_from(value)[0])
        elif level == _LEVEL_ATTACHMENT:
            if attribute == _ATTACH_REND_DATA or not drafts:
                drafts.append(_Draft())
            _apply(drafts[-1], attribute, value, codepage)
    return _finish(drafts, max_bytes)


def _attributes(view: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    # A truncated stream ends the walk quietly: what came before it is whole.
    offset = 6  # signature and legacy key
    for _ in range(_MAX_ATTRIBUTES):
        if offset + 9 > len(view):
            return
        level = view[offset]
        attribute = _U16.unpack_from(view, offset + 1)[0]
        length = _U32.unpack_from(view, offset + 5)[0]
        start = offset + 9
        if start + length > len(view):
            return
        yield level, attribute, view[start : start + length]
        offset = start + length + 2  # the checksum is not worth failing a file over
    raise TnefError("too many attributes")


def _apply(draft: _Draft, attribute: int, value: memoryview, codepage: str) -> None:
    if attribute == _ATTACH_TITLE:
        draft.title = _string8(value, codepage)
    elif attribute == _ATTACH_DATA:
        draft.data = value
    elif attribute == _ATTACHMENT:
        for prop, kind, prop_value in _properties(value):
            _apply_property(draft, prop, kind, prop_value, codepage)


def _apply_property(draft: _Draft, prop: int, kind: int, value: memoryview, codepage: str) -> None:
    if prop == _PR_ATTACH_DATA_OBJ and kind == _PT_OBJECT and len(value) >= 16:
        draft.data = value[16:]  # after the interface id (IMessage, IStorage...)
    elif prop == _PR_ATTACH_DATA_OBJ and kind == _PT_BINARY and draft.data is None:
        draft.data = value
    elif kind in (_PT_STRING8, _PT_UNICODE):
        text = _string8(value, codepage) if kind == _PT_STRING8 else _unicode(value)
        if prop == _PR_ATTACH_LONG_FILENAME:
            draft.long_name = text
        elif prop == _PR_ATTACH_FILENAME:
            draft.short_name = text
        elif prop == _PR_DISPLAY_NAME:
            draft.display_name = text
        elif prop == _PR_ATTACH_MIME_TAG:
            draft.content_type = text.lower()


def _properties(view: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(id, type, first value) of each variable-size MAPI property; stops at anything unknown."""
    if len(view) < 4:
        return
    count, offset = _U32.unpack_from(view)[0], 4
    for _ in range(count):
        if offset + 4 > len(view):
            return
        kind, prop = _U16.unpack_from(view, offset)[0], _U16.unpack_from(view, offset + 2)[0]
        offset = _skip_name(view, offset + 4) if prop >= 0x8000 else offset + 4
        base, multi = kind & ~_MULTI_VALUE, bool(kind & _MULTI_VALUE)
        if base in _VARIABLE_TYPES:
            values, offset = _variable_values(view, offset)
            if values:
                yield prop, base, values[0]
        elif base in _FIXED_SIZES:
            offset = _skip_fixed(view, offset, _FIXED_SIZES[base], multi)
        else:
            return


def _skip_name(view: memoryview, offset: int) -> int:
    # A named property: a GUID, then either a numeric id or a padded UTF-16 name.
    offset += 16
    if offset + 8 > len(view):
        return len(view)
    kind = _U32.unpack_from(view, offset)[0]
    if kind == 0:
        return offset + 8
    return offset + 8 + _padded(_U32.unpack_from(view, offset + 4)[0])


def _variable_values(view: memoryview, offset: int) -> tuple[list[memoryview], int]:
    if offset + 4 > len(view):
        return [], len(view)
    count, offset = _U32.unpack_from(view, offset)[0], offset + 4
    values: list[memoryview] = []
    for _ in range(count):  # each value takes at least 4 bytes: the loop ends with the data
        if offset + 4 > len(view):
            return values, len(view)
        length = _U32.unpack_from(view, offset)[0]
        values.append(view[offset + 4 : offset + 4 + length])
        offset += 4 + _padded(length)
    return values, offset


def _skip_fixed(view: memoryview, offset: int, size: int, multi: bool) -> int:
    if not multi:
        return offset + _padded(size)
    if offset + 4 > len(view):
        return len(view)
    return offset + 4 + _padded(_U32.unpack_from(view, offset)[0] * size)


def _finish(drafts: list[_Draft], max_bytes: int) -> list[TnefFile]:
    files: list[TnefFile] = []
    total = 0
    for draft in drafts:
        data = draft.data if draft.data is not None else memoryview(b"")
        total += len(data)
        if total > max_bytes:
            raise TnefError("too large when unpacked", too_large=True)
        files.append(TnefFile(draft.name(), draft.content_type, bytes(data)))
    return files


def _padded(length: int) -> int:
    return (length + 3) & ~3


def _codec(codepage: int) -> str:
    name = _CODEPAGES.get(codepage, f"cp{codepage}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"


def _string8(value: memoryview, codepage: str) -> str:
    return bytes(value).split(b"\x00", 1)[0].decode(codepage, errors="replace")


def _unicode(value: memoryview) -> str:
    return bytes(value).decode("utf-16-le", errors="replace").split("\x00", 1)[0]
