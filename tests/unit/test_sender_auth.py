"""check_sender in each STAX_SENDER_AUTH mode: nobody imports into an account by forging From.

`none` reads the From address; `authres` trusts only the topmost Authentication-Results of
the configured authserv-id (RFC 8601 section 5) and needs a DMARC pass or an aligned DKIM
pass; `dkim` verifies the signature itself, with a key made here and a DNS function that
hands out its public half.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest

from ingest.sender_auth import SenderCheck, aligned, check_sender

AUTHSERV_ID = "mx.stax.test"
SELECTOR = b"stax2026"


def raw_mail(
    *headers: str,
    sender: str | None = "Acme Finance <finance@acme.example>",
    body: str = "Our Mistral invoice is attached.\r\n",
) -> bytes:
    """A small message with CRLF line ends; `headers` go on top, as an MTA prepends them."""
    lines = [*headers]
    if sender is not None:
        lines.append(f"From: {sender}")
    lines += [
        "To: import@stax.localhost",
        "Subject: Mistral import",
        "Date: Mon, 02 Nov 2026 09:30:00 +0000",
        "Message-ID: <m1@acme.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def check(
    raw: bytes,
    mode: str,
    authserv_id: str | None = AUTHSERV_ID,
    dns: Callable[..., bytes | None] | None = None,
) -> SenderCheck:
    message = message_from_bytes(raw, policy=policy.compat32)
    return check_sender(message, raw, mode, authserv_id, dns)


def ar(text: str) -> str:
    return f"Authentication-Results: {text}"


# --- none: the From line is taken at its word, but it must be one address


def test_none_reads_the_from_address_lower_case() -> None:
    result = check(raw_mail(sender="Acme Finance <Finance@ACME.example>"), "none")
    assert result.authenticated
    assert result.address == "finance@acme.example"
    assert "STAX_SENDER_AUTH=none" in result.reason


@pytest.mark.parametrize(
    ("headers", "sender"),
    [
        pytest.param((), None, id="no From"),
        pytest.param(("From: someone@elsewhere.example",), "finance@acme.example", id="two From"),
        pytest.param((), "finance@acme.example, ap@acme.example", id="two addresses"),
        pytest.param((), "Acme Finance", id="no address"),
        pytest.param((), "finance", id="no domain"),
    ],
)
def test_none_refuses_a_from_that_is_not_exactly_one_address(
    headers: tuple[str, ...], sender: str | None
) -> None:
    result = check(raw_mail(*headers, sender=sender), "none")
    assert not result.authenticated
    assert result.address is None
    assert "From" in result.reason


def test_no_from_is_refused_in_every_mode() -> None:
    for mode in ("authres", "dkim"):
        result = check(raw_mail(ar(f"{AUTHSERV_ID}; dmarc=pass"), sender=None), mode)
        assert not result.authenticated and result.address is None


# --- authres


def test_authres_dmarc_pass_from_our_mta_passes() -> None:
    raw = raw_mail(ar(f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=acme.example; dmarc=pass"))
    result = check(raw, "authres")
    assert result.authenticated
    assert result.address == "finance@acme.example"
    assert result.reason == "DMARC pass"


def test_authres_a_version_after_the_id_is_still_our_header() -> None:
    result = check(raw_mail(ar(f"{AUTHSERV_ID} 1; dmarc=pass header.from=acme.example")), "authres")
    assert result.authenticated


def test_authres_a_folded_header_is_read_whole() -> None:
    header = ar(f"{AUTHSERV_ID};\r\n\tspf=none smtp.mailfrom=acme.example;\r\n\tdmarc=pass")
    assert check(raw_mail(header), "authres").authenticated


@pytest.mark.parametrize(
    "signer",
    ["acme.example", "ACME.example", "mail.acme.example", "eu.mail.acme.example"],
)
def test_authres_dkim_pass_aligned_with_the_from_domain_passes(signer: str) -> None:
    header = ar(f"{AUTHSERV_ID}; dkim=pass header.d={signer} header.s=sel; dmarc=none")
    result = check(raw_mail(header), "authres")
    assert result.authenticated
    assert result.reason == f"DKIM pass for {signer}"


def test_authres_relaxed_alignment_for_a_from_subdomain() -> None:
    raw = raw_mail(
        ar(f"{AUTHSERV_ID}; dkim=pass header.d=acme.example"),
        sender="billing@eu.acme.example",
    )
    result = check(raw, "authres")
    assert result.authenticated and result.address == "billing@eu.acme.example"


@pytest.mark.parametrize(
    "signer",
    [
        "evil.example",
        "notacme.example",  # a suffix of the text, not a parent domain
        "acme.example.evil.example",
    ],
)
def test_authres_dkim_pass_for_another_domain_fails(signer: str) -> None:
    header = ar(f"{AUTHSERV_ID}; dkim=pass header.d={signer}; dmarc=fail")
    result = check(raw_mail(header), "authres")
    assert not result.authenticated
    assert result.address == "finance@acme.example"  # known, so a person can see who it was
    assert "acme.example" in result.reason


@pytest.mark.parametrize(
    "results",
    [
        "dmarc=fail header.from=acme.example",
        "dkim=fail header.d=acme.example; dmarc=fail",
        "dkim=neutral header.d=acme.example",
        "dkim=pass; dmarc=none",  # a DKIM pass that names no signing domain
        "spf=pass smtp.mailfrom=acme.example",  # SPF alone says nothing about From
        "none",
    ],
)
def test_authres_without_a_dmarc_or_aligned_dkim_pass_fails(results: str) -> None:
    result = check(raw_mail(ar(f"{AUTHSERV_ID}; {results}")), "authres")
    assert not result.authenticated


def test_authres_only_headers_of_our_authserv_id_count() -> None:
    raw = raw_mail(
        ar("mx.other.example; dmarc=pass"),
        ar(f"{AUTHSERV_ID}.evil.example; dmarc=pass"),  # a longer name is another id
        ar(f"evil.{AUTHSERV_ID}; dmarc=pass"),
    )
    result = check(raw, "authres")
    assert not result.authenticated
    assert result.reason == f"no Authentication-Results from {AUTHSERV_ID}"


def test_authres_the_topmost_header_of_our_id_wins_over_a_forged_one_below() -> None:
    # Our MTA prepends its verdict; a header claiming our id further down came with the mail.
    forged_below = raw_mail(
        ar(f"{AUTHSERV_ID}; dkim=none; dmarc=fail header.from=acme.example"),
        "Received: from evil.example by mx.stax.test; Mon, 02 Nov 2026 09:30:01 +0000",
        ar(f"{AUTHSERV_ID}; dkim=pass header.d=acme.example; dmarc=pass"),
    )
    assert not check(forged_below, "authres").authenticated

    genuine_on_top = raw_mail(
        ar(f"{AUTHSERV_ID}; dmarc=pass header.from=acme.example"),
        ar(f"{AUTHSERV_ID}; dmarc=fail"),
    )
    assert check(genuine_on_top, "authres").authenticated


def test_authres_another_id_above_ours_does_not_hide_ours() -> None:
    raw = raw_mail(ar("relay.other.example; dmarc=fail"), ar(f"{AUTHSERV_ID}; dmarc=pass"))
    assert check(raw, "authres").authenticated


@pytest.mark.parametrize("authserv_id", [None, ""])
def test_authres_without_stax_authserv_id_trusts_nothing(authserv_id: str | None) -> None:
    raw = raw_mail(ar(f"{AUTHSERV_ID}; dmarc=pass"))
    result = check(raw, "authres", authserv_id=authserv_id)
    assert not result.authenticated
    assert "STAX_AUTHSERV_ID" in result.reason


def test_authres_a_result_written_inside_a_property_value_does_not_count() -> None:
    # The envelope sender is the sender's to choose, and `=` is allowed in a local part:
    # our MTA writes it back as smtp.mailfrom, before the DMARC verdict it reached.
    header = ar(
        f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=dmarc=pass@evil.example; "
        "dkim=none; dmarc=fail header.from=acme.example"
    )
    assert not check(raw_mail(header), "authres").authenticated


def test_authres_a_result_inside_a_comment_does_not_count() -> None:
    header = ar(f"{AUTHSERV_ID}; dkim=none (dmarc=pass is what they wished); dmarc=fail")
    assert not check(raw_mail(header), "authres").authenticated


def test_authres_a_semicolon_inside_a_quoted_value_starts_no_result() -> None:
    # MAIL FROM:<"x;dmarc=pass"@evil.example> is a valid envelope sender.
    header = ar(
        f'{AUTHSERV_ID}; spf=pass smtp.mailfrom="x;dmarc=pass"@evil.example; '
        "dkim=none; dmarc=fail header.from=acme.example"
    )
    assert not check(raw_mail(header), "authres").authenticated


def test_authres_header_d_is_read_only_as_a_property_of_its_own() -> None:
    # A valid DKIM signature of evil.example whose i= tag has a local part of its choosing.
    header = ar(
        f'{AUTHSERV_ID}; dkim=pass header.i="header.d=acme.example"@evil.example '
        "header.d=evil.example; dmarc=fail header.from=acme.example"
    )
    assert not check(raw_mail(header), "authres").authenticated


def test_authres_a_dmarc_pass_said_of_another_from_domain_is_not_this_message_s() -> None:
    header = ar(f"{AUTHSERV_ID}; dmarc=pass header.from=evil.example")
    result = check(raw_mail(header), "authres")
    assert not result.authenticated
    assert "neither DMARC nor an aligned DKIM passed" in result.reason


def test_authres_a_dmarc_pass_for_the_from_domain_in_capitals_passes() -> None:
    header = ar(f"{AUTHSERV_ID}; dmarc=pass header.from=ACME.Example")
    assert check(raw_mail(header), "authres").authenticated


def test_aligned_is_relaxed_alignment() -> None:
    assert aligned("acme.example", "acme.example")
    assert aligned("acme.example.", "ACME.example")
    assert aligned("mail.acme.example", "acme.example")
    assert aligned("acme.example", "eu.acme.example")
    assert not aligned("evil.example", "acme.example")
    assert not aligned("notacme.example", "acme.example")


# --- dkim: the signature verified here, DNS answered by the test


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(PKCS#1 private key PEM, the DKIM TXT record of its public key), made with openssl."""
    folder: Path = tmp_path_factory.mktemp("dkim")
    key = folder / "private.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    public_der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    return key.read_bytes(), record


def dns_for(records: dict[bytes, bytes]) -> Callable[..., bytes | None]:
    """A TXT lookup that knows only `records`; it notes each name it was asked."""

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        asked.append(name)
        return records.get(name.rstrip(b"."))

    asked: list[bytes] = []
    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def signed(raw: bytes, domain: bytes, private_key: bytes) -> bytes:
    signature = dkim.sign(
        raw,
        SELECTOR,
        domain,
        private_key,
        include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"],
    )
    return bytes(signature) + raw


def key_name(domain: bytes) -> bytes:
    return SELECTOR + b"._domainkey." + domain


def test_dkim_a_valid_aligned_signature_passes(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"acme.example"): record})
    result = check(signed(raw_mail(), b"acme.example", private_key), "dkim", dns=dns)
    assert result.authenticated, result.reason
    assert result.address == "finance@acme.example"
    assert result.reason == "DKIM pass for acme.example"
    assert [n.rstrip(b".") for n in dns.asked] == [key_name(b"acme.example")]  # type: ignore[attr-defined]


def test_dkim_a_subdomain_signature_is_aligned(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"mail.acme.example"): record})
    result = check(signed(raw_mail(), b"mail.acme.example", private_key), "dkim", dns=dns)
    assert result.authenticated, result.reason


def test_dkim_a_tampered_body_fails(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"acme.example"): record})
    genuine = signed(raw_mail(body="Invoice total: 100.00 EUR\r\n"), b"acme.example", private_key)
    tampered = genuine.replace(b"100.00 EUR", b"900.00 EUR")
    assert check(genuine, "dkim", dns=dns).authenticated
    result = check(tampered, "dkim", dns=dns)
    assert not result.authenticated
    assert result.address == "finance@acme.example"


def test_dkim_a_tampered_signed_header_fails(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"acme.example"): record})
    genuine = signed(raw_mail(), b"acme.example", private_key)
    tampered = genuine.replace(b"Subject: Mistral import", b"Subject: Mistral import now")
    assert not check(tampered, "dkim", dns=dns).authenticated


def test_dkim_a_valid_signature_by_another_domain_is_not_aligned(
    rsa_key: tuple[bytes, bytes],
) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"evil.example"): record})
    raw = signed(raw_mail(), b"evil.example", private_key)
    result = check(raw, "dkim", dns=dns)
    assert not result.authenticated
    assert result.reason == "DKIM signed by evil.example, not aligned with acme.example"


def test_dkim_a_key_that_does_not_match_fails(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, _ = rsa_key
    other = subprocess.run(
        ["openssl", "genrsa", "-traditional", "2048"], check=True, capture_output=True, timeout=60
    ).stdout
    public_der = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"],
        input=other,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    dns = dns_for({key_name(b"acme.example"): b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)})
    result = check(signed(raw_mail(), b"acme.example", private_key), "dkim", dns=dns)
    assert not result.authenticated


def test_dkim_no_key_in_dns_fails(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, _ = rsa_key
    result = check(signed(raw_mail(), b"acme.example", private_key), "dkim", dns=dns_for({}))
    assert not result.authenticated


def test_dkim_an_unsigned_message_fails() -> None:
    dns = dns_for({})
    result = check(raw_mail(), "dkim", dns=dns)
    assert not result.authenticated
    assert result.reason == "no valid DKIM signature"
    assert dns.asked == []  # type: ignore[attr-defined]


def test_dkim_a_forged_from_added_to_a_signed_message_fails(rsa_key: tuple[bytes, bytes]) -> None:
    private_key, record = rsa_key
    dns = dns_for({key_name(b"evil.example"): record})
    genuine = signed(raw_mail(sender="someone@evil.example"), b"evil.example", private_key)
    # a second From for the registered sender: not one address, so nobody
    forged = b"From: finance@acme.example\r\n" + genuine
    result = check(forged, "dkim", dns=dns)
    assert not result.authenticated and result.address is None


def test_dkim_authentication_results_headers_do_not_count(rsa_key: tuple[bytes, bytes]) -> None:
    raw = raw_mail(ar(f"{AUTHSERV_ID}; dkim=pass header.d=acme.example; dmarc=pass"))
    assert not check(raw, "dkim", dns=dns_for({})).authenticated
