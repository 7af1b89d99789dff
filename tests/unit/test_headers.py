"""The bounded header check that runs before anything parses a whole message."""

from __future__ import annotations

from ingest.headers import inspect_header_block

LIMIT = 100 * 1024


def test_reads_message_id_subject_and_from() -> None:
    raw = (
        b"From: Finance <Finance@Customer.example>\r\n"
        b"Subject: =?utf-8?q?Mistral_import_=E2=80=94_ao=C3=BBt?=\r\n"
        b"Message-ID:\r\n <abc.123@customer.example>\r\n\r\nbody\r\n"
    )
    summary = inspect_header_block(raw, LIMIT)
    assert summary.problem is None
    assert summary.message_id == "<abc.123@customer.example>"
    assert summary.subject == "Mistral import — août"
    assert summary.from_address == "finance@customer.example"


def test_a_message_without_message_id_has_an_empty_one() -> None:
    summary = inspect_header_block(b"From: a@b.example\n\nbody", LIMIT)
    assert summary.message_id == ""
    assert summary.problem is None


def test_folded_subject_is_one_line_without_control_characters() -> None:
    raw = b"Subject: Mistral\r\n\timport\x07 now\r\n\r\n"
    assert inspect_header_block(raw, LIMIT).subject == "Mistral import  now"


def test_header_block_over_the_limit_is_a_problem_and_the_body_is_not_read() -> None:
    raw = b"X-Filler: " + b"a" * 2000 + b"\r\n\r\n" + b"body" * 10
    summary = inspect_header_block(raw, 1000)
    assert summary.problem == "the header block is larger than 1000 bytes"


def test_endless_headers_without_a_blank_line_are_a_problem() -> None:
    raw = b"X-A: b\r\n" * 20_000
    assert inspect_header_block(raw, LIMIT).problem is not None


def test_bytes_that_are_no_message_are_a_problem() -> None:
    assert inspect_header_block(b"%PDF-1.7\n%binary", LIMIT).problem == (
        "no header fields: this is not an email message"
    )


def test_an_mbox_from_line_is_skipped() -> None:
    raw = b"From someone@example Mon Jan  1 00:00:00 2026\nFrom: a@b.example\n\nx"
    assert inspect_header_block(raw, LIMIT).from_address == "a@b.example"


def test_the_first_of_two_message_ids_is_used() -> None:
    raw = b"Message-ID: <one@x>\nMessage-ID: <two@x>\n\n"
    assert inspect_header_block(raw, LIMIT).message_id == "<one@x>"
