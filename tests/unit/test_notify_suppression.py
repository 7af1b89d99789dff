"""No automatic reply to robots, lists, bounces, auto-replies or ourselves (RFC 3834); a
customer's plain mail is answered, at the envelope sender."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from notify.suppression import auto_reply_refusal, reply_target

OWN = ("import@stax.localhost", "support@stax.localhost", "ops@stax.localhost")
CUSTOMER = "finance@customer.example"


def customer_mail(**extra: str) -> dict[str, str]:
    headers = {
        "From": f"Finance <{CUSTOMER}>",
        "To": "import@stax.localhost",
        "Subject": "Mistral import",
        "Message-ID": "<abc@customer.example>",
        "Content-Type": "multipart/mixed; boundary=x",
    }
    headers.update(extra)
    return headers


def refusal(envelope: str | None = CUSTOMER, **extra: str) -> str | None:
    return auto_reply_refusal(customer_mail(**extra), envelope, OWN)


@pytest.mark.parametrize(
    "subject",
    ["Mistral import", "Re: Mistral import", "Fwd: Your Mistral invoice", "TR: Mistral import"],
)
def test_a_customers_plain_mail_may_be_answered(subject: str) -> None:
    assert refusal(Subject=subject) is None


def test_harmless_headers_that_look_close_are_no_reason() -> None:
    assert refusal(**{"Auto-Submitted": "no", "Precedence": "first-class"}) is None
    assert refusal(**{"X-Auto-Response-Suppress": "OOF, DR"}) is None
    assert refusal(Subject="Mistral import - absence of the July invoice") is None
    assert refusal(Subject="Automatic invoice forwarding: Mistral import") is None


@pytest.mark.parametrize("envelope", ["", "<>", " <> "])
def test_null_reverse_path(envelope: str) -> None:
    assert refusal(envelope) == "null reverse-path"


def test_without_an_envelope_the_return_path_header_stands_in() -> None:
    assert refusal(None) is None
    assert refusal(None, **{"Return-Path": "<>"}) == "null reverse-path"
    assert refusal(None, **{"Return-Path": "<MAILER-DAEMON@mx.example>"}) is not None


def test_a_return_path_of_null_refuses_even_with_an_envelope() -> None:
    assert refusal(**{"Return-Path": "<>"}) == "Return-Path: <>"


@pytest.mark.parametrize(
    "value", ["auto-replied", "auto-generated", "auto-notified; owner-email=a@b.example"]
)
def test_auto_submitted_other_than_no(value: str) -> None:
    assert refusal(**{"Auto-Submitted": value}) == f"Auto-Submitted: {value}"


@pytest.mark.parametrize("value", ["bulk", "list", "junk", "Bulk"])
def test_precedence_bulk_list_junk(value: str) -> None:
    assert refusal(Precedence=value) == f"precedence: {value.lower()}"


@pytest.mark.parametrize(
    "name", ["List-Id", "List-Unsubscribe", "List-Post", "List-Help", "X-Mailing-List"]
)
def test_any_list_header(name: str) -> None:
    assert refusal(**{name: "<x.lists.example>"}) == f"list header {name.lower()}"


@pytest.mark.parametrize("value", ["All", "all", "DR, AutoReply", "OOF,All"])
def test_x_auto_response_suppress(value: str) -> None:
    assert (refusal(**{"X-Auto-Response-Suppress": value}) or "").startswith(
        "X-Auto-Response-Suppress"
    )


@pytest.mark.parametrize("name", ["X-Autoreply", "X-Autorespond", "X-Auto-Reply"])
def test_auto_reply_flags_without_auto_submitted(name: str) -> None:
    assert refusal(**{name: "yes"}) == f"{name.lower()} header present"


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example",
        "postmaster@customer.example",
        "noreply@customer.example",
        "no-reply@customer.example",
        "no_reply@customer.example",
        "do-not-reply@customer.example",
        "donotreply@customer.example",
        "owner-finance@lists.example",
        "finance-request@lists.example",
        "finance-bounces@lists.example",
        "bounce-123@mailer.example",
        "bounces+abc=customer.example@mailer.example",
    ],
)
def test_robot_senders_by_envelope_and_by_from(sender: str) -> None:
    assert (refusal(sender) or "").startswith("a robot sender")
    assert (refusal(CUSTOMER, From=sender) or "").startswith("a robot sender")


@pytest.mark.parametrize(
    "sender",
    [
        "import@stax.localhost",
        "IMPORT@Stax.Localhost",
        "import+k3JfQ9x2@stax.localhost",
        "support@stax.localhost",
        "ops@stax.localhost",
    ],
)
def test_the_services_own_addresses(sender: str) -> None:
    assert (refusal(sender) or "").startswith("one of the service's own addresses")
    assert (refusal(CUSTOMER, From=sender) or "").startswith("one of the service's own")


def test_other_mailboxes_on_our_domain_are_people() -> None:
    assert refusal("finance@stax.localhost", From="finance@stax.localhost") is None


@pytest.mark.parametrize(
    "subject",
    [
        "Auto: Mistral import",
        "Automatic reply: Mistral import",
        "Réponse automatique : Mistral import",
        "=?utf-8?q?R=C3=A9ponse_automatique_:_Mistral_import?=",
        "Out of Office: Mistral import",
        "I am out of the office until Monday",
        "Absence du bureau",
        "AutoReply: Mistral import",
        "Abwesenheitsnotiz: Mistral import",
        "Automatische Antwort: Mistral import",
        "Undeliverable: Mistral import",
    ],
)
def test_auto_replies_recognised_by_subject(subject: str) -> None:
    assert (refusal(Subject=subject) or "").startswith("an auto-reply by its subject")


def test_delivery_reports_bounces_and_our_own_replies() -> None:
    report = "multipart/report; report-type=delivery-status; boundary=b"
    assert "multipart/report" in (refusal(**{"Content-Type": report}) or "")
    assert "bounce" in (refusal(**{"X-Failed-Recipients": CUSTOMER}) or "")
    assert "our own replies" in (refusal(**{"X-Stax-Import-Id": "12"}) or "")


def test_a_parsed_message_works_like_a_mapping() -> None:
    raw = (
        b"From: Finance <finance@customer.example>\r\n"
        b"Subject: =?utf-8?q?Automatic_reply=3A_Mistral_import?=\r\n"
        b"Message-ID: <abc@customer.example>\r\n\r\nbody\r\n"
    )
    for parse_policy in (policy.compat32, policy.default):
        message = message_from_bytes(raw, policy=parse_policy)
        assert (auto_reply_refusal(message, CUSTOMER, OWN) or "").startswith("an auto-reply")
    plain = message_from_bytes(raw.replace(b"Automatic_reply=3A_", b""), policy=policy.default)
    assert auto_reply_refusal(plain, CUSTOMER, OWN) is None


def test_reason_text_is_one_bounded_line() -> None:
    reason = refusal(**{"Auto-Submitted": "auto-replied\r\n" + "x" * 500})
    assert reason is not None
    assert "\n" not in reason and "\r" not in reason and len(reason) < 100


def test_reply_target_is_the_envelope_sender() -> None:
    headers = customer_mail(From="Someone Else <else@customer.example>")
    assert reply_target(headers, "Finance+stax@Customer.Example") == (
        "Finance+stax@customer.example"
    )
    assert reply_target(headers, "<finance@customer.example>") == CUSTOMER


def test_reply_target_falls_back_to_from_then_to_nothing() -> None:
    assert reply_target(customer_mail(), None) == CUSTOMER
    assert reply_target(customer_mail(**{"Return-Path": "<rp@customer.example>"}), None) == (
        "rp@customer.example"
    )
    assert reply_target({"From": "not an address"}, None) is None
    assert reply_target({}, None) is None


def test_reply_target_is_nothing_for_a_null_reverse_path() -> None:
    assert reply_target(customer_mail(), "<>") is None
    assert reply_target(customer_mail(**{"Return-Path": "<>"}), None) is None


def test_reply_target_refuses_addresses_with_injected_text() -> None:
    assert reply_target({}, "a@b.example\r\nBcc: victim@x.example") is None
    assert reply_target({"From": "x <a@b.example>, c@d.example"}, None) == "a@b.example"
