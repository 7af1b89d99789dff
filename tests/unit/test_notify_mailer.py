"""STAX_OUTBOUND_SMTP_URL is read once and checked: host, port, TLS, credentials; relay
failures are sorted into worth-retrying and refused-for-good."""

from __future__ import annotations

import smtplib

import pytest

from notify.mailer import (
    DeliveryError,
    PermanentDeliveryError,
    RelayAddress,
    TransientDeliveryError,
    _failure,
)


def test_plain_relay_with_the_default_port() -> None:
    assert RelayAddress.parse("smtp://relay.internal") == RelayAddress("relay.internal", 25)
    assert RelayAddress.parse("smtp://relay.internal:2525").port == 2525


def test_implicit_tls_and_starttls() -> None:
    smtps = RelayAddress.parse("smtps://relay.internal")
    assert (smtps.port, smtps.implicit_tls, smtps.starttls) == (465, True, False)
    starttls = RelayAddress.parse("smtp://relay.internal:587?starttls=1")
    assert (starttls.port, starttls.implicit_tls, starttls.starttls) == (587, False, True)
    assert not RelayAddress.parse("smtp://relay.internal?starttls=0").starttls


def test_credentials_are_url_decoded_and_never_shown() -> None:
    relay = RelayAddress.parse("smtp://stax%40acme:p%40ss%3Aword@relay.internal:587")
    assert (relay.username, relay.password) == ("stax@acme", "p@ss:word")
    assert "p@ss" not in repr(relay)


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.internal",
        "relay.internal:25",
        "smtp://",
        "smtp://relay.internal:notaport",
        "smtp://relay.internal:99999",
        "smtps://relay.internal?starttls=1",
        "smtp://relay.internal?starttls=maybe",
    ],
)
def test_unusable_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        RelayAddress.parse(url.replace("relay", "user:secret@relay"))
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (smtplib.SMTPDataError(554, b"5.6.0 Message refused"), PermanentDeliveryError),
        (smtplib.SMTPDataError(451, b"4.3.0 Later"), TransientDeliveryError),
        (
            smtplib.SMTPSenderRefused(553, b"5.1.8 Bad sender", "a@b.example"),
            PermanentDeliveryError,
        ),
        # about the relay or our configuration, not this message: kept for a later try
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), TransientDeliveryError),
        (smtplib.SMTPConnectError(554, b"5.7.1 Go away"), TransientDeliveryError),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), TransientDeliveryError),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TransientDeliveryError),
        (ConnectionResetError(104, "reset"), TransientDeliveryError),
        (TimeoutError("timed out"), TransientDeliveryError),
    ],
)
def test_smtp_failures_map_to_transient_or_permanent(
    exc: BaseException, error: type[DeliveryError]
) -> None:
    assert type(_failure("send", exc)) is error
