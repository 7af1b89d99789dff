"""At most 20 replies per sender per hour; the same error reply at most once a week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify.rate_limits import (
    ReplyLimits,
    error_fingerprint,
    history_since,
    rate_limit_refusal,
    sender_key,
)

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
SENDER = "finance@customer.example"
UNSCANNED = error_fingerprint("rejected", ["invoice.pdf: a scanned PDF without a text layer"])


Sent = list[tuple[str, str | None, datetime]]


def sent(n: int, minutes_ago: float, sender: str = SENDER, fingerprint: str | None = None) -> Sent:
    """`n` replies to `sender`, sent `minutes_ago` before NOW."""
    return [(sender, fingerprint, NOW - timedelta(minutes=minutes_ago))] * n


def test_a_first_reply_is_allowed() -> None:
    assert rate_limit_refusal(SENDER, None, NOW, []) is None
    assert rate_limit_refusal(SENDER, UNSCANNED, NOW, []) is None


def test_twenty_replies_in_the_hour_allowed_the_twenty_first_refused() -> None:
    assert rate_limit_refusal(SENDER, None, NOW, sent(19, 10)) is None
    reason = rate_limit_refusal(SENDER, None, NOW, sent(20, 10))
    assert reason == "20 replies to this sender in the last 60 min (limit 20)"


def test_replies_older_than_the_hour_and_to_others_do_not_count() -> None:
    history = sent(20, 61) + sent(20, 5, sender="someone@else.example")
    assert rate_limit_refusal(SENDER, None, NOW, history) is None


def test_the_sender_is_one_mailbox_whatever_its_case_brackets_or_tag() -> None:
    history = sent(10, 5, sender="<Finance+a@Customer.Example>") + sent(
        10, 5, "finance+b@customer.example"
    )
    assert rate_limit_refusal(SENDER, None, NOW, history) is not None
    assert sender_key("<Finance+VERP-123@Customer.Example>") == SENDER


def test_the_same_error_reply_is_sent_once_a_week() -> None:
    history = sent(1, 60 * 24 * 6, fingerprint=UNSCANNED)
    reason = rate_limit_refusal(SENDER, UNSCANNED, NOW, history)
    assert reason == "the same error reply went to this sender 144 h ago"
    week_old = sent(1, 60 * 24 * 7 + 1, fingerprint=UNSCANNED)
    assert rate_limit_refusal(SENDER, UNSCANNED, NOW, week_old) is None


def test_a_different_error_or_no_error_is_not_a_repeat() -> None:
    other = error_fingerprint("rejected", ["usage.csv: not a Mistral usage export"])
    history = sent(1, 30, fingerprint=UNSCANNED)
    assert rate_limit_refusal(SENDER, other, NOW, history) is None
    assert rate_limit_refusal(SENDER, None, NOW, history) is None
    assert rate_limit_refusal("other@customer.example", UNSCANNED, NOW, history) is None


def test_the_fingerprint_ignores_order_repeats_and_spacing_but_not_the_template() -> None:
    a = error_fingerprint("rejected", ["b.pdf: encrypted", "a.pdf:  scanned"])
    b = error_fingerprint("rejected", ["a.pdf: scanned", "b.pdf: encrypted", "b.pdf: encrypted"])
    assert a == b
    assert error_fingerprint("held", ["a.pdf: scanned", "b.pdf: encrypted"]) != a


def test_naive_datetimes_are_utc_and_future_ones_count_as_recent() -> None:
    naive = [(SENDER, None, NOW.replace(tzinfo=None) - timedelta(minutes=5))] * 20
    assert rate_limit_refusal(SENDER, None, NOW, naive) is not None
    skewed = sent(20, -3)  # sent "in three minutes": a clock ahead, still counted
    assert rate_limit_refusal(SENDER, None, NOW, skewed) is not None


def test_limits_are_configurable_and_history_since_covers_both_windows() -> None:
    limits = ReplyLimits(per_sender=2, per_sender_window=timedelta(minutes=10))
    assert rate_limit_refusal(SENDER, None, NOW, sent(2, 5), limits) is not None
    assert rate_limit_refusal(SENDER, None, NOW, sent(2, 11), limits) is None
    assert history_since(NOW) == NOW - timedelta(days=7)
