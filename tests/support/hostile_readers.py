"""Readers that misbehave on purpose, run in the parse child to prove its limits."""

from __future__ import annotations

import time

from parsers.base import Document, Refused


def spins(name: str, data: bytes) -> list[Document]:
    while True:
        pass


def hoards_memory(name: str, data: bytes) -> list[Document]:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def sleeps(name: str, data: bytes) -> list[Document]:
    time.sleep(3600)
    return []


def crashes(name: str, data: bytes) -> list[Document]:
    raise KeyError("a bug in a parser")


def refuses(name: str, data: bytes) -> list[Document]:
    raise Refused(name, "not today")


def reads(name: str, data: bytes) -> list[Document]:
    return [Document(file=name, kind="invoice", currency="EUR", number=data.decode())]
