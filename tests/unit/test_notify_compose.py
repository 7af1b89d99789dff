"""The reply carries exactly the headers of CONTRACT.md, threads under the original, and no
inbound header text reaches it raw."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from notify.compose import MAX_REFERENCES, OriginalMessage, compose_reply, references
from notify.render import RenderedReply

SERVICE = "import@stax.localhost"
CUSTOMER = "finance@customer.example"
NOW = datetime(2026, 11, 2, 9, 30, 5, tzinfo=UTC)
RENDERED = RenderedReply(
    subject="Re: Mistral import",
    text="Imported: invoice MIS-1 <b>\n",
    html="<p>Imported: invoice MIS-1 &lt;b&gt;</p>\n",
)


def composed(
    subject: str = "Mistral import",
    message_id: str = "<orig.1@customer.example>",
    refs: str = "",
    status: str = "imported",
) -> tuple[EmailMessage, bytes]:
    """The reply as the relay would receive it, parsed back from its bytes."""
    reply = compose_reply(
        OriginalMessage(subject, message_id, refs), RENDERED, 42, status, SERVICE, CUSTOMER, now=NOW
    )
    raw = reply.as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed, raw


def test_the_contract_headers_each_once() -> None:
    reply, _ = composed(refs="<root@customer.example> <mid@stax.localhost>")
    assert str(reply["To"]) == CUSTOMER
    assert reply["From"].addresses[0].display_name == "Stax mail import"
    assert reply["From"].addresses[0].addr_spec == SERVICE
    assert reply["Subject"] == "Re: Mistral import"
    assert reply["In-Reply-To"] == "<orig.1@customer.example>"
    assert reply["References"] == (
        "<root@customer.example> <mid@stax.localhost> <orig.1@customer.example>"
    )
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Stax-Import-Id"] == "42"
    assert reply["X-Stax-Import-Status"] == "imported"
    assert parsedate_to_datetime(reply["Date"]) == NOW
    assert re.fullmatch(r"<stax-import-42\.[0-9a-f]{20}@stax\.localhost>", reply["Message-ID"])
    for name in reply:
        assert len(reply.get_all(name) or []) == 1, name


@pytest.mark.parametrize("status", ["imported", "duplicate", "rejected", "held"])
def test_each_status_is_written_and_nothing_else_is_accepted(status: str) -> None:
    assert composed(status=status)[0]["X-Stax-Import-Status"] == status
    with pytest.raises(ValueError):
        composed(status="quarantined")


def test_text_and_html_alternatives() -> None:
    reply, raw = composed()
    assert reply.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in reply.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = reply.get_body(("plain",))
    html = reply.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == RENDERED.text
    assert html.get_content().replace("\r\n", "\n") == RENDERED.html
    assert max(raw) < 128  # 7-bit: any relay takes it


def test_message_ids_are_fresh() -> None:
    assert composed()[0]["Message-ID"] != composed()[0]["Message-ID"]


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("Mistral import", "Re: Mistral import"),
        ("Re: Mistral import", "Re: Mistral import"),
        ("RE: Mistral import", "Re: Mistral import"),
        ("re:Mistral import", "Re: Mistral import"),
        ("Re : Mistral import", "Re: Mistral import"),
        ("Re: Re: RE: Mistral import", "Re: Mistral import"),
        ("Ré: Mistral import", "Re: Mistral import"),
        ("AW: Mistral import", "Re: Mistral import"),
        ("SV: Mistral import", "Re: Mistral import"),
        ("Re[2]: Mistral import", "Re: Mistral import"),
        ("=?utf-8?q?R=C3=A9=3A_Mistral_import?=", "Re: Mistral import"),
        ("Fwd: Mistral import", "Re: Fwd: Mistral import"),
        ("TR: Facture Mistral — août", "Re: TR: Facture Mistral — août"),
        ("Return of the invoice", "Re: Return of the invoice"),
        ("", "Re:"),
    ],
)
def test_subject_is_re_plus_the_original_never_re_re(original: str, expected: str) -> None:
    assert composed(subject=original)[0]["Subject"] == expected


@pytest.mark.parametrize(
    "subject",
    [
        "Mistral import\r\nBcc: victim@x.example",
        "Mistral import\nBcc: victim@x.example",
        "=?utf-8?q?foo=0D=0ABcc:_victim@x.example?=",
        "Mistral =?utf-8?q?foo=0D=0ABcc:_victim@x.example?= import",
        "Mistral=?utf-8?q?foo=0D=0ABcc:_victim@x.example?=",
        # encoded twice: decoding once leaves an encoded word that the email library would
        # decode again when the header is set
        "=?utf-8?q?=3D=3Futf-8=3Fq=3Ffoo=3D0D=3D0ABcc=3A=5Fvictim=40x=2Eexample=3F=3D?=",
        "Mistral import\u2028Bcc: victim@x.example\x85",
    ],
)
def test_injection_attempts_in_the_subject_are_neutralised(subject: str) -> None:
    reply, raw = composed(subject=subject)
    assert "Bcc" not in reply
    assert not re.search(rb"(?mi)^bcc:", raw)
    decoded = reply["Subject"]
    assert "\r" not in decoded and "\n" not in decoded and "\u2028" not in decoded
    assert "Bcc" in decoded  # the text is still shown, harmlessly, on the subject line


@pytest.mark.parametrize(
    "message_id",
    [
        "",
        "<no-at-sign>",
        "no-brackets@customer.example",
        "<a b@customer.example>",
        "<=?utf-8?q?x=0D=0ABcc:_v@x?=@customer.example>",
        "<a@customer.example\r\nBcc: victim@x.example>",
    ],
)
def test_malformed_message_ids_are_dropped(message_id: str) -> None:
    reply, raw = composed(message_id=message_id)
    assert "In-Reply-To" not in reply and "References" not in reply
    assert b"victim" not in raw


def test_valid_ids_are_kept_as_written_and_malformed_references_skipped() -> None:
    refs = "<root@customer.example>\r\n <bad> <=?utf-8?q?a?=@x> <CAF+x=y@mail.gmail.com>"
    reply, _ = composed(message_id="  <CA+k=Q@mail.gmail.com> (comment)", refs=refs)
    assert reply["In-Reply-To"] == "<CA+k=Q@mail.gmail.com>"
    assert reply["References"] == (
        "<root@customer.example> <CAF+x=y@mail.gmail.com> <CA+k=Q@mail.gmail.com>"
    )


def test_a_long_reference_chain_keeps_its_root_and_the_last_ones() -> None:
    chain = " ".join(f"<m{n}@customer.example>" for n in range(50))
    ids = references(
        OriginalMessage("s", "<last@customer.example>", chain + " <m3@customer.example>")
    )
    assert len(ids) == MAX_REFERENCES
    assert ids[0] == "<m0@customer.example>"
    assert ids[-1] == "<last@customer.example>"
    assert ids[-2] == "<m49@customer.example>"


def test_a_long_references_header_folds_between_ids_and_reads_back_whole() -> None:
    chain = " ".join(f"<CAF+{n}=abcdefghijklmnopqrstuvwxyz{n}@mail.gmail.com>" for n in range(12))
    reply, raw = composed(message_id="<CA+k=Q@mail.gmail.com>", refs=chain)
    assert reply["References"].split() == references(
        OriginalMessage("", "<CA+k=Q@mail.gmail.com>", chain)
    )
    assert reply["References"].startswith("<CAF+0=")  # no leading space once unfolded
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "to",
    [
        "",
        "not an address",
        "a@b.example, c@d.example",
        "a@b.example\r\nBcc: v@x.example",
        "Name <a@b.example>",
        "=?utf-8?q?a=0D=0A?=@b.example",
    ],
)
def test_the_recipient_must_be_one_plain_address(to: str) -> None:
    with pytest.raises(ValueError):
        compose_reply(OriginalMessage(), RENDERED, 1, "held", SERVICE, to)


def test_the_original_read_from_a_parsed_message() -> None:
    raw = (
        b"From: finance@customer.example\r\n"
        b"Subject: =?utf-8?q?Facture_Mistral_=E2=80=94_ao=C3=BBt?=\r\n"
        b"message-id: <orig.9@customer.example>\r\n"
        b"References: <root@customer.example>\r\n\r\nbody\r\n"
    )
    for parse_policy in (policy.compat32, policy.default):
        original = OriginalMessage.from_headers(message_from_bytes(raw, policy=parse_policy))
        assert original.display_subject == "Facture Mistral — août"
        reply = compose_reply(original, RENDERED, 9, "imported", SERVICE, CUSTOMER)
        parsed = message_from_bytes(reply.as_bytes(policy=policy.SMTP), policy=policy.default)
        assert parsed["Subject"] == "Re: Facture Mistral — août"
        assert parsed["References"] == "<root@customer.example> <orig.9@customer.example>"
