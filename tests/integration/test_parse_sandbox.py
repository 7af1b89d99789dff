"""The parse child: a hostile file costs a bounded amount and yields a reason, not a crash."""

from __future__ import annotations

import pytest

from parsers.base import Refused
from parsers.sandbox import Limits, ParserCrashed, parse_in_child
from support import hostile_readers

TIGHT = Limits(cpu_seconds=1, memory_bytes=256 * 1024 * 1024, wall_seconds=5)


def test_the_documents_come_back_from_the_child() -> None:
    [document] = parse_in_child("a.pdf", b"MIS-1", TIGHT, hostile_readers.reads)
    assert (document.file, document.number) == ("a.pdf", "MIS-1")


def test_a_refusal_keeps_its_reason() -> None:
    with pytest.raises(Refused) as refused:
        parse_in_child("a.pdf", b"", TIGHT, hostile_readers.refuses)
    assert (refused.value.file, refused.value.reason) == ("a.pdf", "not today")


@pytest.mark.parametrize(
    ("reader", "reason"),
    [
        (hostile_readers.spins, "CPU time"),
        (hostile_readers.hoards_memory, "MiB of memory"),
        (hostile_readers.sleeps, "longer than 5 seconds"),
    ],
)
def test_a_limit_broken_is_a_refusal_naming_the_limit(reader, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as refused:
        parse_in_child("hostile.pdf", b"x", TIGHT, reader)
    assert reason in refused.value.reason


def test_a_parser_bug_is_ours_not_the_customer_s() -> None:
    with pytest.raises(ParserCrashed, match="KeyError"):
        parse_in_child("a.pdf", b"x", TIGHT, hostile_readers.crashes)
