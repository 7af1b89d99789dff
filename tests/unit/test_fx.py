"""USD conversion follows CONTRACT.md: the ECB rate of the day or the latest earlier one, never a
guess past the data."""

from __future__ import annotations

import zipfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.fx import FxRate, InstallSummary, Rates, convert, install_history

# ECB format: newest first, a trailing comma on every line, N/A where a currency had no rate.
HISTORY = """Date,USD,JPY,GBP,RUB,
2099-01-02,1.2000,150.5,0.8000,N/A,
2099-01-01,1.1000,N/A,0.8500,N/A,
2098-12-31,1.0500,149,0.8400,90.5,
"""
# 2098-12-31 is a Wednesday, 2099-01-02 a Friday; 2099-01-01 is a TARGET holiday in real life.


@pytest.fixture
def history_csv(tmp_path: Path) -> Path:
    path = tmp_path / "eurofxref-hist.csv"
    path.write_text(HISTORY, encoding="utf-8")
    return path


def _zip(csv_path: Path) -> Path:
    path = csv_path.with_suffix(".zip")
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(csv_path, "eurofxref-hist.csv")
    return path


# --- The bundled ECB history -----------------------------------------------------------------


def test_a_weekday_gets_the_ecb_rate_published_that_day() -> None:
    # ECB, Friday 14 March 2025: 1 EUR = 1.0889 USD
    assert Rates.bundled().usd_rate("EUR", date(2025, 3, 14)) == FxRate(
        Decimal("1.0889"), date(2025, 3, 14)
    )


def test_a_saturday_gets_the_fridays_rate_and_says_so() -> None:
    assert Rates.bundled().usd_rate("eur", date(2025, 6, 14)) == FxRate(
        Decimal("1.1512"), date(2025, 6, 13)
    )


def test_a_target_holiday_gets_the_latest_earlier_rate() -> None:
    rate = Rates.bundled().usd_rate("EUR", date(2025, 12, 25))
    assert rate is not None and rate.ecb_day == date(2025, 12, 24)


def test_other_currencies_cross_through_the_euro() -> None:
    # 13 June 2025: USD 1.1512 and GBP 0.8505 per EUR; 1.1512 / 0.8505 to 8 significant digits
    assert Rates.bundled().usd_rate("GBP", date(2025, 6, 13)) == FxRate(
        Decimal("1.3535567"), date(2025, 6, 13)
    )


def test_a_working_day_past_the_data_has_no_rate() -> None:
    rates = Rates.bundled()
    day = rates.last_day + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    assert rates.usd_rate("EUR", day) is None
    assert rates.usd_rate("EUR", rates.last_day) is not None


def test_usd_needs_no_data_and_unknown_currencies_have_no_rate() -> None:
    rates = Rates.bundled()
    assert rates.usd_rate("USD", date(2199, 1, 1)) == FxRate(Decimal(1), date(2199, 1, 1))
    assert rates.usd_rate("XYZ", date(2025, 3, 14)) is None
    assert rates.usd_rate("EUR", date(1998, 12, 31)) is None  # before the euro
    assert rates.usd_rate("RUB", date(2025, 3, 14)) is None  # no longer published


def test_convert_rounds_half_up_to_cents() -> None:
    assert convert(Decimal("81.96"), Decimal("1.1485")) == Decimal("94.13")
    assert convert(Decimal("0.005"), Decimal(1)) == Decimal("0.01")
    assert convert(Decimal("1234567890123456789.125"), Decimal(1)) == Decimal(
        "1234567890123456789.13"
    )


# --- A newer ECB history from a file ---------------------------------------------------------


def test_a_history_loads_from_csv_and_from_zip(history_csv: Path) -> None:
    for path in (history_csv, _zip(history_csv)):
        rates = Rates.from_file(path)
        assert (rates.first_day, rates.last_day) == (date(2098, 12, 31), date(2099, 1, 2))
        assert rates.usd_rate("EUR", date(2099, 1, 1)) == FxRate(
            Decimal("1.1000"), date(2099, 1, 1)
        )


def test_data_ending_on_a_friday_reaches_that_weekend_only(history_csv: Path) -> None:
    rates = Rates.from_file(history_csv)
    friday = FxRate(Decimal("1.2000"), date(2099, 1, 2))
    assert rates.usd_rate("EUR", date(2099, 1, 3)) == friday  # Saturday
    assert rates.usd_rate("EUR", date(2099, 1, 4)) == friday  # Sunday
    assert rates.usd_rate("EUR", date(2099, 1, 5)) is None  # Monday: not in the data yet


def test_a_currency_without_a_rate_that_day_has_none(history_csv: Path) -> None:
    rates = Rates.from_file(history_csv)
    assert rates.usd_rate("JPY", date(2099, 1, 1)) is None  # N/A, not the day before's
    assert rates.usd_rate("RUB", date(2099, 1, 2)) is None
    assert rates.usd_rate("RUB", date(2098, 12, 31)) is not None


def test_install_copies_the_history_where_load_finds_it(history_csv: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    summary = install_history(history_csv, data_dir)
    assert summary == InstallSummary(
        date(2098, 12, 31), date(2099, 1, 2), ("EUR", "GBP", "JPY", "RUB", "USD")
    )
    assert (data_dir / "fx" / "eurofxref-hist.csv").read_text() == HISTORY
    assert Rates.load(data_dir).last_day == date(2099, 1, 2)

    install_history(_zip(history_csv), data_dir)
    assert sorted(p.name for p in (data_dir / "fx").iterdir()) == ["eurofxref-hist.zip"]
    assert Rates.load(data_dir).last_day == date(2099, 1, 2)


def test_load_prefers_the_bundled_history_over_an_older_installed_one(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text("Date,USD,\n2001-01-02,0.9000,\n", encoding="utf-8")
    install_history(old, tmp_path / "var")
    assert Rates.load(tmp_path / "var").last_day == Rates.bundled().last_day
    assert Rates.load(tmp_path / "empty").last_day == Rates.bundled().last_day


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\xfe", "not an ECB history"),
        (b"", "header must start with Date"),
        (b"Day,USD\n2026-10-30,1.1\n", "header must start with Date"),
        (b"Date,JPY\n2026-10-30,170\n", "USD among them"),
        (b"Date,USD\n", "no rates"),
        (b"Date,USD\n30 October 2026,1.1\n", "one-day file"),
        (b"Date,USD\n2026-10-30,abc\n", "not a rate"),
        (b"Date,USD\n2026-10-30,0\n", "not a rate"),
        (b"Date,USD,GBP\n2026-10-30,1.1\n", "expected 2 rates"),
        (b"Date,USD\n2026-10-30,1.1\n2026-10-30,1.2\n", "twice"),
    ],
)
def test_install_refuses_a_file_that_is_not_an_ecb_history(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "eurofxref-hist.csv"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        install_history(bad, tmp_path / "var")
    assert not list((tmp_path / "var").glob("fx/eurofxref-hist*"))


def test_install_refuses_a_zip_without_one_csv(tmp_path: Path) -> None:
    bad = tmp_path / "eurofxref-hist.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"exactly one \.csv"):
        install_history(bad, tmp_path / "var")


# --- Properties ------------------------------------------------------------------------------


@given(
    st.sets(st.dates(min_value=date(2020, 1, 1), max_value=date(2020, 3, 31)), min_size=1),
    st.dates(min_value=date(2019, 12, 1), max_value=date(2020, 4, 30)),
)
def test_the_rate_is_always_the_latest_published_on_or_before_the_day(
    published: set[date], day: date
) -> None:
    # Each day's rate encodes its own day, so the answer tells which ECB day was used.
    table = {d: {"USD": Decimal(d.toordinal())} for d in published}
    rates = Rates(table, "test")
    answer = rates.usd_rate("EUR", day)
    earlier = [d for d in published if d <= day]
    reached = day <= rates.last_day or all(
        (rates.last_day + timedelta(days=n)).weekday() >= 5
        for n in range(1, (day - rates.last_day).days + 1)
    )
    if not earlier or not reached:
        assert answer is None
    else:
        assert answer == FxRate(Decimal(max(earlier).toordinal()), max(earlier))


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    st.decimals(min_value=Decimal("0.0001"), max_value=1000, places=6, allow_nan=False),
)
def test_convert_is_exact_then_rounded_once(amount: Decimal, rate: Decimal) -> None:
    exact = amount * rate  # within 28 digits here, so exact
    result = convert(amount, rate)
    assert result.as_tuple().exponent == -2
    assert abs(result - exact) <= Decimal("0.005")
