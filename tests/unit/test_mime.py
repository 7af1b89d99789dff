"""Every way a mail client wraps an invoice gets it out; every other part is named with a reason."""

from __future__ import annotations

import binascii
import io
import zipfile
from pathlib import Path

import pytest

from fixtures import mails
from parsers import archives, mime_parts
from parsers.archives import ZipLimits
from parsers.mime import (
    FORWARDED_EMPTY,
    INTERNAL,
    OUTLOOK_FILE,
    TNEF_DAMAGED,
    TNEF_EMPTY,
    TNEF_TOO_LARGE,
    TOO_MANY_PARTS,
    ZIP_TOO_DEEP,
    Extracted,
    MimeLimits,
    extract_documents,
)
from parsers.tnef import read_tnef

PDF = mails.pdf()


def names(result: Extracted) -> list[str]:
    return [attachment.name for attachment in result.attachments]


def reasons(result: Extracted) -> dict[str, str]:
    return {skipped.name: skipped.reason for skipped in result.skipped}


def only_pdf(raw: bytes) -> str:
    """The name of the one document found, after checking it is the PDF and nothing went wrong."""
    result = extract_documents(raw)
    assert result.problems == []
    assert [a.data for a in result.attachments] == [PDF]
    return result.attachments[0].name


# Labels: the content decides


def test_a_pdf_labelled_octet_stream_is_found() -> None:
    raw = mails.with_attachments(mails.part("application/octet-stream", PDF, name="invoice.pdf"))
    assert only_pdf(raw) == "invoice.pdf"


def test_an_inline_pdf_without_disposition_is_found() -> None:
    entity = mails.part("application/pdf", PDF, name="invoice.pdf", disposition=None)
    assert only_pdf(mails.with_attachments(entity)) == "invoice.pdf"


@pytest.mark.parametrize(
    "header_block",
    [
        "Content-Type: application/pdf; name=\n"  # an empty name, the real one elsewhere
        'Content-Disposition: attachment; filename="invoice.pdf"',
        'Content-Type: application/pdf name="invoice.pdf"',  # Microsoft CDO: no semicolon
        'Content-Type: APPLICATION/OCTET-STREAM; NAME="invoice.pdf"',
        'Content-Type: application; name="invoice.pdf"',  # no subtype at all
        'Content-Type: text/plain; name="invoice.pdf"',
        'Content-Type: image/png; name="invoice.pdf"',
    ],
)
def test_a_pdf_with_a_broken_content_type_is_found(header_block: str) -> None:
    entity = mails.raw_part(header_block + "\nContent-Transfer-Encoding: base64", PDF)
    assert only_pdf(mails.with_attachments(entity)) == "invoice.pdf"


def test_a_pdf_without_any_name_is_given_one_from_its_content() -> None:
    entity = mails.part("application/octet-stream", PDF, disposition=None)
    result = extract_documents(mails.with_attachments(entity))
    assert names(result) == ["attachment-3.pdf"]
    assert result.attachments[0].path == "2 > attachment-3.pdf"


def test_a_message_that_is_only_a_pdf_gives_the_pdf() -> None:
    raw = mails.message(mails.part("application/pdf", PDF, name="invoice.pdf"))
    result = extract_documents(raw)
    assert names(result) == ["invoice.pdf"]
    assert result.attachments[0].path == "1 > invoice.pdf"


def test_a_transfer_encoding_with_a_trailing_semicolon_is_decoded() -> None:
    block = 'Content-Type: application/pdf; name="invoice.pdf"\nContent-Transfer-Encoding: base64;'
    assert only_pdf(mails.with_attachments(mails.raw_part(block, PDF))) == "invoice.pdf"


def test_a_pdf_sent_as_raw_binary_keeps_every_byte() -> None:
    entity = mails.part(
        "application/pdf; charset=\udce9", PDF, name="invoice.pdf", encoding="binary"
    )
    assert only_pdf(mails.with_attachments(entity)) == "invoice.pdf"


def test_a_quoted_printable_pdf_is_decoded() -> None:
    entity = mails.part("application/pdf", PDF, name="invoice.pdf", encoding="quoted-printable")
    assert only_pdf(mails.with_attachments(entity)) == "invoice.pdf"


# Names


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("filename*=UTF-8''facture-%C3%A9t%C3%A9.pdf", "facture-été.pdf"),
        ("filename*=iso-8859-1'fr'facture-%E9t%E9.pdf", "facture-été.pdf"),
        ("filename*0*=UTF-8''facture-%C3%A9;\n filename*1*=t%C3%A9.pdf", "facture-été.pdf"),
        ('filename="=?UTF-8?B?ZmFjdHVyZS3DqXTDqS5wZGY=?="', "facture-été.pdf"),
        ("filename==?utf-8?B?ZmFjdHVyZS3DqXTDqS5wZGY=?=", "facture-été.pdf"),  # unquoted
        ('filename="=?iso-8859-1?Q?facture-=E9?=\n =?iso-8859-1?Q?t=E9.pdf?="', "facture-été.pdf"),
        ('filename="=?utf-8?B?ZmFjdHVyZS3D?= =?utf-8?B?qXTDqS5wZGY=?="', "facture-été.pdf"),
        ("filename*=x-unknown-charset''facture-%C3%A9t%C3%A9.pdf", "facture-été.pdf"),
        ('filename="facture-\udce9t\udce9.pdf"', "facture-été.pdf"),  # raw Latin-1 bytes
        ('filename="facture-\udcc3\udca9t\udcc3\udca9.pdf"', "facture-été.pdf"),  # raw UTF-8
        ('filename="C:\\Users\\finance\\Desktop\\invoice.pdf"', "invoice.pdf"),
        ('filename="../../etc/invoice.pdf"', "invoice.pdf"),
        ('filename="=?utf-8?q?Mistral=0AInvoice=07.pdf?="', "Mistral Invoice.pdf"),
        ('filename="\u202efdp.exe"', "fdp.exe"),  # a right-to-left override hides the real type
        ('filename=".."', "attachment-3.pdf"),
        ('filename="' + "a" * 300 + '.pdf"', "a" * 196 + ".pdf"),
    ],
)
def test_names_are_decoded_and_made_safe(params: str, expected: str) -> None:
    block = f"Content-Type: application/octet-stream\nContent-Disposition: attachment; {params}"
    raw = mails.with_attachments(mails.raw_part(block + "\nContent-Transfer-Encoding: base64", PDF))
    assert only_pdf(raw) == expected


def test_the_disposition_filename_wins_over_the_type_name() -> None:
    block = (
        'Content-Type: application/pdf; name="old.pdf"\n'
        'Content-Disposition: attachment; filename="new.pdf"\nContent-Transfer-Encoding: base64'
    )
    assert only_pdf(mails.with_attachments(mails.raw_part(block, PDF))) == "new.pdf"


# Wrappings


def test_a_pdf_in_a_forwarded_message_inside_another_forward_is_found() -> None:
    inner = mails.with_attachments(mails.part("application/pdf", PDF, name="invoice.pdf"))
    middle = mails.with_attachments(mails.forwarded(inner), subject="Fwd: invoice")
    raw = mails.with_attachments(mails.forwarded(middle), subject="Fwd: Fwd: invoice")
    result = extract_documents(raw)
    assert names(result) == ["invoice.pdf"]
    assert result.attachments[0].path == (
        "2 (forwarded message)/2 (forwarded message)/2 > invoice.pdf"
    )


def test_a_forwarded_message_without_a_name_or_disposition_is_walked() -> None:
    inner = mails.with_attachments(mails.part("application/octet-stream", PDF, name="a.pdf"))
    entity = b"Content-Type: message/rfc822\r\n\r\n" + inner
    assert only_pdf(mails.with_attachments(entity)) == "a.pdf"


def test_a_forwarded_message_with_only_text_is_listed_once() -> None:
    inner = mails.message(mails.text_body("see you"), subject="Lunch")
    result = extract_documents(mails.with_attachments(mails.forwarded(inner, name=None)))
    assert reasons(result) == {"message body": mime_parts.BODY, "Lunch": FORWARDED_EMPTY}


def test_a_base64_encoded_forwarded_message_is_decoded_first() -> None:
    inner = mails.with_attachments(mails.part("application/pdf", PDF, name="swift.pdf"))
    block = 'Content-Type: message/rfc822; name="fwd.eml"\nContent-Transfer-Encoding: base64'
    assert only_pdf(mails.with_attachments(mails.raw_part(block, inner))) == "swift.pdf"


def test_a_digest_entry_is_a_message_with_its_attachments() -> None:
    inner = mails.with_attachments(mails.part("application/pdf", PDF, name="digest.pdf"))
    digest = mails.multipart("digest", b"\r\n" + inner)  # entries default to message/rfc822
    assert only_pdf(mails.message(digest)) == "digest.pdf"


def test_an_eml_file_sent_as_octet_stream_is_walked() -> None:
    inner = mails.with_attachments(mails.part("application/pdf", PDF, name="invoice.pdf"))
    entity = mails.part("application/octet-stream", inner, name="forward.eml")
    result = extract_documents(mails.with_attachments(entity))
    assert [a.path for a in result.attachments] == ["2 > forward.eml/2 > invoice.pdf"]


def test_a_pdf_in_winmail_dat_is_found_with_its_long_name() -> None:
    winmail = mails.tnef([("facture-été.pdf", PDF), ("logo.png", mails.png())])
    entity = mails.part("application/ms-tnef", winmail, name="winmail.dat")
    result = extract_documents(mails.with_attachments(entity))
    assert names(result) == ["facture-été.pdf"]
    assert result.attachments[0].path == "2 > winmail.dat > facture-été.pdf"
    assert reasons(result)["logo.png"] == mime_parts.IMAGE


def test_a_pdf_in_an_outlook_message_attached_inside_winmail_dat_is_found() -> None:
    winmail = mails.tnef([], messages=[mails.tnef([("invoice.pdf", PDF)])])
    entity = mails.part("application/octet-stream", winmail, name="winmail.dat")
    result = extract_documents(mails.with_attachments(entity))
    assert [a.path for a in result.attachments] == [
        "2 > winmail.dat > Untitled Attachment > invoice.pdf"
    ]


def test_winmail_dat_with_no_attachment_is_named() -> None:
    empty = mails.part("application/ms-tnef", mails.tnef([]), name="winmail.dat")
    cut = mails.part("application/ms-tnef", mails.tnef([("a.pdf", PDF)])[:30], name="b.dat")
    result = extract_documents(mails.with_attachments(empty, cut))
    assert reasons(result) == {
        "message body": mime_parts.BODY,
        "winmail.dat": TNEF_EMPTY,
        "b.dat": TNEF_EMPTY,
    }


def test_a_winmail_dat_of_endless_attributes_is_damaged() -> None:
    attribute = b"\x01\x0d\x80\x02\x00\x02\x00\x00\x00xx\xf0\x00"  # a priority, again and again
    winmail = mails.tnef([])[:6] + attribute * 60_000
    entity = mails.part("application/ms-tnef", winmail, name="winmail.dat")
    assert reasons(extract_documents(mails.message(entity)))["winmail.dat"] == TNEF_DAMAGED


def test_winmail_dat_that_is_really_a_png_is_an_image() -> None:
    entity = mails.part("application/ms-tnef", mails.png(), name="winmail.dat")
    assert reasons(extract_documents(mails.message(entity)))["winmail.dat"] == mime_parts.IMAGE


def test_winmail_dat_shares_the_unpacking_budget_of_the_message() -> None:
    winmail = mails.tnef([("invoice.pdf", PDF)])
    entity = mails.part("application/ms-tnef", winmail, name="winmail.dat")
    result = extract_documents(mails.message(entity), MimeLimits(zip=ZipLimits(max_total_bytes=50)))
    assert reasons(result) == {"winmail.dat": TNEF_TOO_LARGE}


def test_a_truncated_winmail_dat_keeps_the_files_before_the_cut() -> None:
    winmail = mails.tnef([("invoice.pdf", PDF), ("usage.csv", b"a,b\n1,2\n" * 50)])
    files = read_tnef(winmail[:-40], max_bytes=archives.MIB)
    assert [f.name for f in files][:1] == ["invoice.pdf"]


def test_a_bare_winmail_dat_is_opened() -> None:
    result = extract_documents(mails.tnef([("invoice.pdf", PDF)]))
    assert [a.path for a in result.attachments] == ["winmail.dat > invoice.pdf"]


# Zip archives


def zipped(archive: bytes, limits: MimeLimits | None = None) -> Extracted:
    entity = mails.part("application/zip", archive, name="invoices.zip")
    return extract_documents(mails.with_attachments(entity), limits)


def test_a_zip_with_a_pdf_and_a_csv_gives_both() -> None:
    csv = b"date,model,tokens\n2026-10-01,mistral-large,1200\n"
    result = zipped(mails.zip_archive([("2026/invoice.pdf", PDF), ("usage.csv", csv)]))
    assert [(a.name, a.path) for a in result.attachments] == [
        ("invoice.pdf", "2 > invoices.zip > invoice.pdf"),
        ("usage.csv", "2 > invoices.zip > usage.csv"),
    ]


def test_a_zip_bomb_is_refused_without_unpacking_it() -> None:
    result = zipped(mails.zip_bomb())
    assert reasons(result) == {"message body": mime_parts.BODY, "usage.csv": archives.BOMB}


@pytest.mark.parametrize("name", ["../invoice.pdf", "/etc/invoice.pdf", "C:\\x\\invoice.pdf"])
def test_a_member_outside_the_archive_folder_is_refused(name: str) -> None:
    result = zipped(mails.zip_archive([(name, PDF), ("ok.pdf", mails.pdf("ok"))]))
    assert names(result) == ["ok.pdf"]
    assert reasons(result)["invoice.pdf"] == archives.OUTSIDE


def test_a_password_protected_member_is_refused() -> None:
    result = zipped(mails.password_flagged(mails.zip_archive([("invoice.pdf", PDF)])))
    assert reasons(result)["invoice.pdf"] == archives.ENCRYPTED


def test_a_zip_with_too_many_members_is_refused_whole() -> None:
    members = [(f"{n}.pdf", mails.pdf(str(n))) for n in range(101)]
    result = zipped(mails.zip_archive(members))
    assert result.attachments == []
    assert reasons(result)["invoices.zip"] == archives.TOO_MANY.format(n=100)


def test_a_zip_that_lies_about_its_member_count_is_still_refused() -> None:
    archive = bytearray(mails.zip_archive([(f"{n}.txt", b"x") for n in range(150)]))
    end = archive.rfind(b"PK\x05\x06")
    archive[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # claims one member
    assert reasons(zipped(bytes(archive)))["invoices.zip"] == archives.TOO_MANY.format(n=100)


def test_members_over_the_size_limits_are_refused() -> None:
    noise = bytes((n * 7919) % 251 for n in range(4000))  # does not compress
    archive = mails.zip_archive([("a.pdf", PDF + noise), ("b.pdf", mails.pdf("b") + noise)])
    member_cap = MimeLimits(zip=ZipLimits(max_member_bytes=2000))
    assert set(reasons(zipped(archive, member_cap)).values()) >= {archives.TOO_LARGE}
    total_cap = MimeLimits(zip=ZipLimits(max_total_bytes=6000))
    result = zipped(archive, total_cap)
    assert names(result) == ["a.pdf"]
    assert reasons(result)["b.pdf"] == archives.TOO_LARGE_TOTAL


def test_zips_open_two_levels_deep_and_no_deeper() -> None:
    level2 = mails.zip_archive([("deep.pdf", mails.pdf("deep"))])
    level1 = mails.zip_archive([("mid.pdf", mails.pdf("mid")), ("inner.zip", level2)])
    assert names(zipped(level1)) == ["mid.pdf", "deep.pdf"]
    level0 = mails.zip_archive([("outer.zip", level1)])
    result = zipped(level0)
    assert names(result) == ["mid.pdf"]
    assert reasons(result)["inner.zip"] == ZIP_TOO_DEEP


def test_a_word_document_is_not_opened_as_a_zip() -> None:
    entity = mails.part("application/octet-stream", mails.docx(), name="renamed.zip")
    result = extract_documents(mails.with_attachments(entity))
    assert reasons(result)["renamed.zip"] == mime_parts.OFFICE


def test_a_damaged_zip_is_named() -> None:
    result = zipped(mails.zip_archive([("a.pdf", PDF)])[:-30])
    assert reasons(result)["invoices.zip"] == archives.DAMAGED_ZIP


def test_a_zip_member_with_a_bad_crc_is_refused() -> None:
    archive = bytearray(mails.zip_archive([("a.csv", b"a,b\n" * 100)], stored=True))
    archive[40] ^= 0xFF  # one byte of the stored data
    assert reasons(zipped(bytes(archive)))["a.csv"] == archives.UNREADABLE


def test_the_zip_reader_counts_bytes_rather_than_trusting_the_header() -> None:
    archive = bytearray(mails.zip_archive([("a.csv", bytes(200_000))]))
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as original:
        info = original.infolist()[0]
    assert info.file_size == 200_000
    # Shrink the claimed size in the central directory: the reader must not believe it.
    at = archive.rfind(b"PK\x01\x02")
    archive[at + 24 : at + 28] = (10).to_bytes(4, "little")
    assert reasons(zipped(bytes(archive)))["a.csv"] == archives.UNREADABLE


# Limits


def test_more_than_a_thousand_parts_stops_with_a_problem_and_keeps_what_was_found() -> None:
    raw = mails.many_parts(1001, mails.part("application/pdf", PDF, name="first.pdf"))
    result = extract_documents(raw)
    assert names(result) == ["first.pdf"]
    assert result.problems == ["the message has more than 1000 parts: the rest was not read"]


def test_a_thousand_parts_are_all_read() -> None:
    result = extract_documents(mails.many_parts(999, mails.part("application/pdf", PDF)))
    assert result.problems == []
    assert len(result.skipped) == 998


def test_twenty_levels_are_read_and_twenty_one_are_not() -> None:
    leaf = mails.part("application/pdf", PDF, name="deep.pdf")
    assert only_pdf(mails.nested(20, leaf)) == "deep.pdf"
    result = extract_documents(mails.nested(21, leaf))
    assert result.attachments == []
    assert result.problems == [
        "the message is nested more than 20 levels deep: the parts below were not read"
    ]


def test_absurd_nesting_is_a_problem_not_a_crash() -> None:
    result = extract_documents(mails.nested(3000, mails.part("application/pdf", PDF)))
    assert result.attachments == []
    assert result.problems and INTERNAL not in result.problems


# Duplicates and reasons


def test_the_same_file_twice_is_one_candidate() -> None:
    first = mails.part("application/pdf", PDF, name="invoice.pdf")
    again = mails.part("application/octet-stream", PDF, name="invoice (1).pdf")
    inner = mails.with_attachments(mails.part("application/pdf", PDF, name="fwd.pdf"))
    result = extract_documents(mails.with_attachments(first, again, mails.forwarded(inner)))
    assert names(result) == ["invoice.pdf"]
    assert reasons(result)["invoice (1).pdf"] == mime_parts.DUPLICATE
    assert reasons(result)["fwd.pdf"] == mime_parts.DUPLICATE


def test_parts_that_are_not_documents_are_listed_with_their_reason() -> None:
    result = extract_documents(
        mails.with_attachments(
            mails.part("image/png", mails.png(), name="logo.png", disposition="inline"),
            mails.part("application/pkcs7-signature", b"0\x82sig", name="smime.p7s"),
            mails.part("application/pgp-signature", b"-----BEGIN PGP", name="signature.asc"),
            mails.part("application/octet-stream", mails.docx(), name="invoice.docx"),
            mails.part("application/msword", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="a.doc"),
            mails.part(
                "application/vnd.ms-excel", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="b.xls"
            ),
            mails.part("text/calendar", b"BEGIN:VCALENDAR", name="invite.ics"),
            mails.part("text/html", b"<p>receipt</p>", name="receipt.html"),
            mails.part("text/plain", b"thanks", name="notes.txt"),
            mails.part("application/pdf", b"", name="empty.pdf"),
            mails.part("application/pdf", b"not a pdf", name="fake.pdf"),
            mails.part(
                "application/vnd.ms-outlook", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="m.msg"
            ),
        )
    )
    assert result.attachments == []
    assert reasons(result) == {
        "message body": mime_parts.BODY,
        "logo.png": mime_parts.IMAGE,
        "smime.p7s": mime_parts.SIGNATURE,
        "signature.asc": mime_parts.SIGNATURE,
        "invoice.docx": mime_parts.OFFICE,
        "a.doc": mime_parts.OFFICE,
        "b.xls": mime_parts.OFFICE,
        "invite.ics": mime_parts.CALENDAR,
        "receipt.html": mime_parts.WEB_PAGE,
        "notes.txt": mime_parts.TEXT,
        "empty.pdf": mime_parts.EMPTY,
        "fake.pdf": mime_parts.NOT_A_PDF,
        "m.msg": mime_parts.OUTLOOK_MESSAGE,
    }


def test_undecodable_base64_is_a_damaged_encoding() -> None:
    block = (
        'Content-Type: application/octet-stream; name="data.bin"\nContent-Transfer-Encoding: base64'
    )
    entity = mails.raw_part(block, b"QUJD*RE*=\r\nx", encoding="binary")
    assert reasons(extract_documents(mails.with_attachments(entity)))["data.bin"] == (
        mime_parts.DAMAGED_ENCODING
    )


def test_uuencoded_and_unknown_transfer_encodings() -> None:
    lines = [binascii.b2a_uu(PDF[at : at + 45]) for at in range(0, len(PDF), 45)]
    uuencoded = b"begin 644 invoice.pdf\n" + b"".join(lines)
    uu = mails.part(
        "application/pdf", uuencoded + b"`\nend\n", name="uu.pdf", encoding="x-uuencode"
    )
    odd = mails.part("application/zip", b"UEsDBA==", name="odd.zip", encoding="base9000")
    result = extract_documents(mails.with_attachments(uu, odd))
    assert names(result) == ["uu.pdf"]
    assert reasons(result)["odd.zip"] == mime_parts.UNKNOWN_ENCODING


def test_reports_partial_messages_and_broken_multiparts_are_named() -> None:
    report = mails.part("message/delivery-status", b"Action: failed\r\n", encoding="7bit")
    partial = mails.part("message/partial; id=x; number=1", b"From: a\r\n\r\nx", encoding="")
    broken = b'Content-Type: multipart/mixed; boundary="never"\r\n\r\nleft as text\r\n'
    result = extract_documents(mails.with_attachments(report, partial, broken))
    assert [s.reason for s in result.skipped] == [
        mime_parts.BODY,
        mime_parts.REPORT,
        mime_parts.PARTIAL,
        mime_parts.BROKEN_STRUCTURE,
    ]


def test_the_body_is_listed_once_however_many_alternatives_it_has() -> None:
    body = mails.multipart("alternative", mails.text_body(), mails.html_body())
    raw = mails.message(mails.multipart("mixed", body, mails.part("application/pdf", PDF)))
    result = extract_documents(raw)
    assert [s.reason for s in result.skipped] == [mime_parts.BODY]


# CSV and JSON: the label says so and the content is text


@pytest.mark.parametrize(
    ("content_type", "name"),
    [
        ("text/csv", "usage.csv"),
        ("text/csv", None),
        ("application/octet-stream", "usage.csv"),
        ("application/vnd.ms-excel", "usage.csv"),
        ("text/plain", "usage.json"),
        ("application/json", "usage"),
    ],
)
def test_a_csv_or_json_export_is_a_candidate(content_type: str, name: str | None) -> None:
    data = b'{"data": []}' if "json" in (name or content_type) else b"a;b\n1;2\n"
    entity = mails.part(content_type, data, name=name)
    result = extract_documents(mails.with_attachments(entity))
    assert [a.data for a in result.attachments] == [data]


def test_text_without_a_table_label_is_not_a_candidate() -> None:
    entity = mails.part("text/plain", b"a,b\n1,2\n", name="usage.txt")
    assert extract_documents(mails.with_attachments(entity)).attachments == []


def test_binary_named_csv_is_refused() -> None:
    entity = mails.part("text/csv", b"\x00\x01\x02" * 10, name="usage.csv")
    assert reasons(extract_documents(mails.with_attachments(entity)))["usage.csv"] == (
        mime_parts.NOT_TEXT
    )


# What is not a message at all


def test_an_outlook_msg_file_is_a_problem() -> None:
    result = extract_documents(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    assert result.problems == [OUTLOOK_FILE]


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 100, b"garbage without headers", PDF])
def test_anything_at_all_gives_an_answer(raw: bytes) -> None:
    result = extract_documents(raw)
    assert INTERNAL not in result.problems


# The real-world corpus (../shared/corpus/emails, SOURCES.md)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "emails"
CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []
INVOICE = "Invoice_302232133150612.pdf"
# Every corpus mail that carries a PDF or a CSV, with the names it must be found under.
DOCUMENTS = {
    "apache-james/filenameAndName.eml": ["bad.csv"],  # filename= wins over name=
    "apache-james/filenameOnly.eml": ["inventory.csv"],
    "django-mailbox/bad_character_attachment.eml": ["K\ufffdrelem.pdf"],  # U+FFFD in the source
    "django-mailbox/message_with_koi8r_filename_attachments.eml": [
        "Пакет предложений HSE Career Fair 8 апреля 2016.pdf",
        "Ведомости.pdf",
    ],
    "enmime/mail/attachment-only-text-attachment.raw": ["test.csv"],
    "enmime/mail/mime-bad-content-type.raw": [INVOICE],
    "enmime/mail/mime-blank-media-name.raw": [INVOICE],
    "enmime/mail/mime-duplicate-param.raw": [INVOICE],
    "enmime/mail/mime-unquoted-tspecials-param.raw": ["Invoice_(302232133150612).pdf"],
    "mailgun-flanker/attached-pdf.eml": ["test.pdf"],
    "mikel-mail/attachment_emails/attachment_message_rfc822.eml": ["broken.pdf"],
    "mikel-mail/attachment_emails/attachment_pdf.eml": ["broken.pdf"],
    "mikel-mail/attachment_emails/attachment_pdf_lf.eml": ["broken.pdf"],
    "mikel-mail/mime_emails/raw_email_with_multipart_mixed_quoted_boundary.eml": ["broken.pdf"],
    "php-mime-mail-parser/issue274.eml": ["Hello from SwiftMailer.pdf"],
    "spamscope-mail-parser/mail_test_10": ["Move To Eight ZWEP6227F.pdf"],
    "spamscope-mail-parser/mail_test_2": ["Bollettino.pdf"],
    "spamscope-mail-parser/mail_test_7": ["20170609091403417.pdf"],
}
PROBLEMS = {
    "mailgun-flanker/enclosed-endless.eml": [TOO_MANY_PARTS.format(n=1000)],  # 3,000 parts
    "spamscope-mail-parser/mail_outlook_1": [OUTLOOK_FILE],
}
KITTEN = "kitten-playing-with-a-christmas-tree.jpg"


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the shared corpus is not at {CORPUS}")
@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_corpus_mail_gives_its_documents_and_nothing_else(path: Path) -> None:
    key = str(path.relative_to(CORPUS))
    result = extract_documents(path.read_bytes())
    assert names(result) == DOCUMENTS.get(key, [])
    assert result.problems == PROBLEMS.get(key, [])
    for skipped in result.skipped:
        assert skipped.name and skipped.reason and skipped.content_type


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the shared corpus is not at {CORPUS}")
def test_corpus_documents_are_found_where_they_are() -> None:
    forwarded = extract_documents(
        (CORPUS / "mikel-mail/attachment_emails/attachment_message_rfc822.eml").read_bytes()
    )
    assert forwarded.attachments[0].path == "2 (forwarded message)/2 > broken.pdf"
    octet_stream = extract_documents((CORPUS / "spamscope-mail-parser/mail_test_2").read_bytes())
    assert octet_stream.attachments[0].data.startswith(b"%PDF-")
    assert len(octet_stream.attachments[0].data) == 1_089_942  # SOURCES.md: 1.09 MB


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the shared corpus is not at {CORPUS}")
@pytest.mark.parametrize(
    ("file", "path"),
    [
        ("mimekit/tnef/rich-text.eml", f"2 > winmail.dat > {KITTEN}"),
        ("mimekit/tnef/rich-text.eml", f"2 > winmail.dat > Untitled Attachment > {KITTEN}"),
        ("mimekit/tnef/christmas.tnef", f"winmail.dat > {KITTEN}"),
    ],
)
def test_real_winmail_dat_files_are_opened(file: str, path: str) -> None:
    result = extract_documents((CORPUS / file).read_bytes())
    found = {s.path: s.reason for s in result.skipped}
    assert found[path] == mime_parts.IMAGE


@pytest.mark.skipif(not CORPUS_FILES, reason=f"the shared corpus is not at {CORPUS}")
def test_real_winmail_dat_oddities_are_named() -> None:
    m4006 = extract_documents((CORPUS / "zbateson-mail-mime-parser/m4006.txt").read_bytes())
    assert reasons(m4006) == {"winmail.dat": mime_parts.IMAGE}  # Outlook's "winmail.dat" is a PNG
    ukr = extract_documents((CORPUS / "mimekit/tnef/ukr.eml").read_bytes())
    assert reasons(ukr)["winmail.dat"] == TNEF_EMPTY
