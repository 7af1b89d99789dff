"""Amounts and dates as printed on Mistral documents are read exactly, or refused, never misread."""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.numbers import (
    AmbiguousDate,
    AmbiguousNumber,
    guess_day_first,
    guess_decimal_comma,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)

NBSP, NNBSP = "\u00a0", "\u202f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234.56", "1234.56"),
        ("1 234,56", "1234.56"),
        (f"1{NBSP}234,56", "1234.56"),
        (f"1{NNBSP}234,56{NNBSP}€", "1234.56"),
        ("1.234,56", "1234.56"),
        ("€1,234.56", "1234.56"),
        ("1 234,56 €", "1234.56"),
        ("-€12.00", "-12.00"),
        ("€-12.00", "-12.00"),
        ("\u221212,00 €", "-12.00"),  # MINUS SIGN
        ("(12.00)", "-12.00"),
        ("$0.0000017", "0.0000017"),
        ("0,0000017000", "0.0000017000"),
        ("12.50", "12.50"),
        ("1234.567", "1234.567"),
        ("1,234,567", "1234567"),
        ("1.234.567,8", "1234567.8"),
        ("1 234 567,891", "1234567.891"),
        ("1'234.50 CHF", "1234.50"),
        ("EUR 48211930", "48211930"),
        ("12.00 USD", "12.00"),
        ("1.7e-06", "0.0000017"),
        ("0", "0"),
    ],
)
def test_amounts_in_english_and_french_styles_are_read_exactly(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert value == Decimal(expected)
    assert str(value) == str(Decimal(expected))  # trailing zeros kept: no float on the way


def test_a_lone_mark_before_three_digits_needs_the_documents_convention() -> None:
    with pytest.raises(AmbiguousNumber, match="convention"):
        parse_amount("1,234")
    with pytest.raises(AmbiguousNumber):
        parse_amount("€1.234")
    assert parse_amount("1,234", decimal_comma=False) == Decimal(1234)
    assert parse_amount("1,234", decimal_comma=True) == Decimal("1.234")
    assert parse_amount("1.234", decimal_comma=True) == Decimal(1234)


@pytest.mark.parametrize(
    ("text", "decimal_comma"),
    [
        ("12.50", True),  # a French document printing a decimal point
        ("1,234,567", True),
        ("1.234,56", False),
        ("0,5", False),
    ],
)
def test_a_number_that_contradicts_the_convention_is_refused(
    text: str, decimal_comma: bool
) -> None:
    with pytest.raises(ValueError, match="decimal mark"):
        parse_amount(text, decimal_comma)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "€",
        "12%",
        "1,23,456",
        "1.234.56",
        "12 34",
        "--1",
        "1.2.3,4,5",
        "1,5.2,3",
        "1 2,5",
    ],
)
def test_garbage_is_refused_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_percentages_are_read_only_by_parse_percent() -> None:
    assert parse_percent("20%") == Decimal(20)
    assert parse_percent(f"20{NNBSP}%") == Decimal(20)
    assert parse_percent("5,5 %") == Decimal("5.5")
    assert parse_percent("12.5%") == Decimal("12.5")
    with pytest.raises(ValueError, match="percentage"):
        parse_amount("20 %")
    with pytest.raises(ValueError, match="no %"):
        parse_percent("20")


def test_the_convention_is_guessed_from_the_unambiguous_numbers() -> None:
    assert guess_decimal_comma(["1,234", "12,50", "Total"]) is True
    assert guess_decimal_comma(["1,234", "1,234,567.00"]) is False
    assert guess_decimal_comma(["1.234.567"]) is True
    assert guess_decimal_comma(["1 234,567"]) is True
    assert guess_decimal_comma(["1,234", "2.345", "12"]) is None  # nothing tells
    assert guess_decimal_comma(["1,5", "2.5"]) is None  # they disagree
    assert guess_decimal_comma([]) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("€", "EUR"),
        ("EUR", "EUR"),
        ("1 234,56 €", "EUR"),
        ("Coût (€)", "EUR"),
        ("$0.0000017", "USD"),
        ("US$ 12", "USD"),
        ("Cost (USD)", "USD"),
        ("£3.50", "GBP"),
        ("CHF 12", "CHF"),
        ("Cost", None),
        ("ils try", None),  # French and English words, not TRY or ILS
    ],
)
def test_currencies_map_to_iso_codes(text: str, code: str | None) -> None:
    assert parse_currency(text) == code


def test_two_currencies_in_one_text_are_refused() -> None:
    with pytest.raises(ValueError, match="several currencies"):
        parse_currency("EUR (USD)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01", date(2026, 10, 1)),
        ("2026-10-31T23:59:59.999Z", date(2026, 10, 31)),
        ("Oct 1, 2026", date(2026, 10, 1)),
        ("October 1, 2026", date(2026, 10, 1)),
        ("Oct. 1st, 2026", date(2026, 10, 1)),
        ("1 October 2026", date(2026, 10, 1)),
        ("Thursday, October 1, 2026", date(2026, 10, 1)),
        ("01/10/2026", date(2026, 10, 1)),
        ("1.10.2026", date(2026, 10, 1)),
        ("1 janv. 2026", date(2026, 1, 1)),
        ("12 févr. 2026", date(2026, 2, 12)),
        ("12 fevr. 2026", date(2026, 2, 12)),
        (unicodedata.normalize("NFD", "12 févr. 2026"), date(2026, 2, 12)),
        ("1er octobre 2026", date(2026, 10, 1)),
        ("jeudi 1er octobre 2026", date(2026, 10, 1)),
        ("31 déc. 2026", date(2026, 12, 31)),
        ("31 DÉC. 2026", date(2026, 12, 31)),
        ("1 juil. 2026", date(2026, 7, 1)),
        ("15 août 2026", date(2026, 8, 15)),
        ("15 aout 2026", date(2026, 8, 15)),
        ("01-Oct-26", date(2026, 10, 1)),
    ],
)
def test_dates_in_english_and_french_styles(text: str, expected: date) -> None:
    assert parse_date(text) == expected


def test_numeric_dates_follow_the_order_the_caller_gives() -> None:
    assert parse_date("01/10/2026", day_first=True) == date(2026, 10, 1)
    assert parse_date("01/10/2026", day_first=False) == date(2026, 1, 10)
    assert parse_date("31/10/2026", day_first=None) == date(2026, 10, 31)
    assert parse_date("10/31/2026", day_first=None) == date(2026, 10, 31)
    with pytest.raises(AmbiguousDate):
        parse_date("01/10/2026", day_first=None)
    with pytest.raises(ValueError, match="DD/MM/YYYY"):
        parse_date("10/31/2026", day_first=True)  # never swapped silently


def test_the_day_order_is_guessed_from_dates_past_the_twelfth() -> None:
    assert guess_day_first(["01/10/2026", "31/10/2026"]) is True
    assert guess_day_first(["10/01/2026", "10/31/2026"]) is False
    assert guess_day_first(["01/10/2026", "2026-10-31"]) is None
    assert guess_day_first(["31/10/2026", "10/31/2026"]) is None


@pytest.mark.parametrize(
    "text",
    ["", "blah", "October 2026", "31 févr. 2026", "2026-13-01", "Friday, October 1, 2026"],
)
def test_bad_dates_are_refused_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


# --- Properties ------------------------------------------------------------------------------

EN, FR = False, True


@st.composite
def printed_amounts(draw: st.DrawFn) -> tuple[str, Decimal, bool]:
    """A random amount printed the way an English or a French document prints it."""
    integer = draw(st.integers(min_value=0, max_value=10**15))
    fraction = draw(st.text("0123456789", max_size=10))
    negative = draw(st.booleans())
    style = draw(st.sampled_from([EN, FR]))
    mark = "," if style is FR else "."
    thousands_choices = [" ", NBSP, NNBSP, ".", ""] if style is FR else [",", ""]
    thousands = draw(st.sampled_from(thousands_choices))
    text = f"{integer:,}".replace(",", thousands) + (f"{mark}{fraction}" if fraction else "")
    symbol = draw(st.sampled_from(["", "€", "$", "EUR"]))
    text = f"{text} {symbol}".strip() if style is FR else f"{symbol}{text}"
    text = f"-{text}" if negative else text
    expected = Decimal(f"{integer}.{fraction}" if fraction else str(integer))
    return text, (-expected if negative and expected else expected), style


@given(printed_amounts())
def test_any_amount_parses_back_exactly_given_the_documents_convention(
    case: tuple[str, Decimal, bool],
) -> None:
    text, expected, style = case
    value = parse_amount(text, decimal_comma=style)
    assert value == expected
    assert value.as_tuple().exponent == expected.as_tuple().exponent


@given(printed_amounts())
def test_without_a_convention_an_amount_is_read_exactly_or_refused(
    case: tuple[str, Decimal, bool],
) -> None:
    text, expected, _ = case
    try:
        value = parse_amount(text)
    except AmbiguousNumber:
        return
    assert value == expected


@given(st.lists(printed_amounts(), min_size=1, max_size=8), st.sampled_from([EN, FR]))
def test_the_guessed_convention_is_never_the_wrong_one(
    cases: list[tuple[str, Decimal, bool]], style: bool
) -> None:
    samples = [text for text, _, case_style in cases if case_style is style]
    assert guess_decimal_comma(samples) in (style, None)


EN_MONTHS = "January February March April May June July August September October November December"
FR_MONTHS = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
FR_SHORT = "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc."


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _styles(d: date) -> list[str]:
    en = EN_MONTHS.split()[d.month - 1]
    fr, fr_short = FR_MONTHS.split()[d.month - 1], FR_SHORT.split()[d.month - 1]
    fr_day = "1er" if d.day == 1 else str(d.day)
    return [
        d.isoformat(),
        f"{en[:3]} {d.day}, {d.year}",
        f"{en} {d.day}, {d.year}",
        f"{en} {_ordinal(d.day)}, {d.year}",
        f"{d.day} {en} {d.year}",
        f"{d.strftime('%A')}, {en} {d.day}, {d.year}",
        f"{d.day:02d}/{d.month:02d}/{d.year}",
        f"{d.day} {fr_short} {d.year}",
        f"{fr_day} {fr} {d.year}",
        f"{d.day} {fr_short} {d.year}".upper(),
    ]


@given(
    st.dates(min_value=date(1999, 1, 1), max_value=date(2099, 12, 31)),
    st.sampled_from(["NFC", "NFD"]),
    st.booleans(),
)
def test_any_date_parses_back_from_every_style(
    d: date, form: Literal["NFC", "NFD"], strip_accents: bool
) -> None:
    for text in _styles(d):
        printed = unicodedata.normalize(form, text)
        if strip_accents:
            printed = "".join(
                c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
            )
        assert parse_date(printed) == d, printed
    assert parse_date(f"{d.month:02d}/{d.day:02d}/{d.year}", day_first=False) == d
