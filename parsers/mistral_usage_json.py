"""The admin console's usage JSON, priced by its own price list into one usage_export document.

Representation (shape in MISTRAL_FORMATS.md):
- One line per (section, model id, usage group) over the period's daily events. quantity =
  Σ value_paid (billed units; `value` is consumed, and plan-covered usage is not billed);
  amount = Σ value_paid x the price of (event_type, billing_metric, billing_group), exact,
  then rounded half-up to cents per line. Lines that bill nothing are left out.
- A price without a billing_group applies to every group of its metric. No price, or two
  different prices for one key: a warning and amount 0 for those units, never a guess.
- Category by section: completion (embeddings or moderation where the catalogue says the model
  is one), ocr, audio, connectors, libraries_api.* → libraries, fine_tuning.* → fine_tuning.
  An undocumented section with "models" is imported (category `other`, or its own name where
  that is a category) with a warning rather than dropped.
- vibe_usage is not documented (money, requests or tokens?): a non-zero value is a warning,
  not a line.
- Period from start_date/end_date as written (dates only); an end at exactly midnight is
  exclusive (`2026-11-01T00:00:00Z` ends the period on 2026-10-31). Without them, the events'
  first and last days, with a warning; with neither, the file is refused.
- Currency from `currency`, else `currency_symbol`, else EUR with a warning. subtotal = total
  = the sum of the lines; tax is null (the console data states none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from parsers.base import CATEGORIES, Document, Line, Refused, Source, Usage
from parsers.models import ModelMatch, identify
from parsers.numbers import parse_currency, parse_date

MAX_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 50
CENT = Decimal("0.01")
DEFAULT_CURRENCY = "EUR"  # Mistral bills in EUR unless the Organization chose USD
PRECISION = 60  # digits: value_paid x a 10-decimal price, summed over a month, stays exact

_SECTIONS = {"completion": "completion", "ocr": "ocr", "connectors": "connectors", "audio": "audio"}
_NESTED = {"libraries_api": "libraries", "fine_tuning": "fine_tuning"}
_NOT_SECTIONS = {"vibe_usage", "start_date", "end_date", "currency", "currency_symbol", "prices"}
_DEFAULT_UNITS = {
    "completion": "tokens",
    "ocr": "pages",
    "libraries_api.pages": "pages",
    "libraries_api.tokens": "tokens",
}
_UNIT_WORDS = (("token", "tokens"), ("page", "pages"), ("second", "seconds"), ("minute", "minutes"))
_USAGES: dict[str, Usage] = {"input": "input", "output": "output", "cached": "cached"}
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')
_BRACKET = re.compile(r"[\[\]{}]")
_MIDNIGHT = re.compile(r"T00:00(?::00(?:\.0+)?)?(?:Z|[+-]00:?00)?$", re.IGNORECASE)

_PriceKey = tuple[str, str, str]  # event_type, billing_metric, billing_group


class _Problem(ValueError):
    """What is wrong with the file, in the customer's words; becomes a Refused."""


@dataclass(frozen=True)
class _Event:
    """One daily event, reduced to what pricing needs."""

    price_key: _PriceKey
    paid: Decimal
    day: str | None


@dataclass
class _Sum:
    """A line being added up over the period."""

    description: str
    match: ModelMatch
    category: str
    usage: Usage | None
    unit: str | None
    quantity: Decimal = Decimal(0)
    exact: Decimal = Decimal(0)
    prices: set[Decimal] = field(default_factory=set)


class UsageJsonParser:
    """The console's monthly usage data, as customers save it from the admin console."""

    name = "mistral_usage_json"

    def score(self, source: Source) -> float:
        if source.format != "json":
            return 0.0
        try:
            data = _load(source)
        except _Problem:
            # Broken or too big, but ours by its words: parse() then says what is wrong.
            text = source.text
            return 0.95 if '"prices"' in text and '"models"' in text else 0.0
        return 0.95 if _is_usage(data) else 0.0

    def parse(self, source: Source) -> list[Document]:
        try:
            data = _load(source)
            if not _is_usage(data):
                raise _Problem("this JSON is not Mistral's console usage data")
            return [_document(source.name, data)]
        except _Problem as problem:
            raise Refused(source.name, str(problem)) from None


PARSER = UsageJsonParser()


# --- reading


def _load(source: Source) -> Any:
    """The JSON value, every non-integer number a Decimal; bounded in size and depth."""
    if len(source.data) > MAX_BYTES:
        raise _Problem(f"the JSON is larger than {MAX_BYTES // 2**20} MB; we read at most that")
    text = source.text
    if _depth(text) > MAX_DEPTH:
        raise _Problem(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise _Problem(
            f"the JSON is not valid: line {error.lineno} column {error.colno} ({error.msg})"
        ) from None
    except ValueError as error:
        raise _Problem(f"the JSON is not valid: {error}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(text: str) -> int:
    """How deep arrays and objects nest, counted before parsing (json recurses per level)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match[0] in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def _is_usage(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "prices" in data
        and any(isinstance(data.get(k), dict) and "models" in data[k] for k in _SECTIONS)
    )


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise _Problem(f"the usage data is not in the console's shape: {problem}")


def _decimal(value: Any, what: str) -> Decimal:
    """A JSON number (or a numeric string) exactly."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite():
            return number
    raise _Problem(f"{what} {value!r} is not a number")


# --- prices and events


def _prices(raw: Any) -> dict[_PriceKey, Decimal | None]:
    """Each price by its key; None where the list gives one key two different prices."""
    _expect(isinstance(raw, list), "prices is not a list")
    prices: dict[_PriceKey, Decimal | None] = {}
    for entry in raw:
        _expect(isinstance(entry, dict), "a price is not an object")
        group = entry.get("billing_group") or ""
        key = (entry.get("event_type"), entry.get("billing_metric"), group)
        _expect(all(isinstance(part, str) for part in key), f"a price is incomplete: {entry!r}")
        price = _decimal(entry.get("price"), f"the price of {' / '.join(key)}")
        prices[key] = price if prices.get(key, price) == price else None
    return prices


def _event(raw: Any, group: str, where: str) -> _Event:
    _expect(isinstance(raw, dict), f"{where}: an event is not an object")
    event_type, metric = raw.get("event_type"), raw.get("billing_metric")
    billing_group = raw.get("billing_group", group)
    _expect(
        isinstance(event_type, str) and isinstance(metric, str) and isinstance(billing_group, str),
        f"{where}: an event has no event_type, billing_metric or billing_group",
    )
    paid = _decimal(raw.get("value_paid"), f"{where}: value_paid")
    day = raw.get("timestamp")
    return _Event((event_type, metric, billing_group), paid, day if isinstance(day, str) else None)


@dataclass
class _Tally:
    """The lines of the document being added up, and what pricing could not cover."""

    prices: dict[_PriceKey, Decimal | None]
    sums: dict[tuple[str, str, str], _Sum] = field(default_factory=dict)
    unpriced: dict[_PriceKey, Decimal] = field(default_factory=dict)
    days: list[str] = field(default_factory=list)

    def add(self, line: _Sum, event: _Event) -> None:
        line.quantity += event.paid
        line.unit = line.unit or _unit_of(event.price_key[0])
        if event.day:
            self.days.append(event.day)
        if not event.paid:
            return  # covered by a plan: nothing billed, so no price needed
        price = self._price(event.price_key)
        if price is None:
            self.unpriced[event.price_key] = self.unpriced.get(event.price_key, 0) + event.paid
            return
        line.exact += event.paid * price
        line.prices.add(price)

    def _price(self, key: _PriceKey) -> Decimal | None:
        if key in self.prices:
            return self.prices[key]
        return self.prices.get((key[0], key[1], ""))  # a price for every group of the metric


def _unit_of(word: str) -> str | None:
    lowered = word.lower()
    return next((unit for part, unit in _UNIT_WORDS if part in lowered), None)


# --- sections and models


def _sections(
    data: dict[str, Any], warnings: list[str]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(category, where, models) for every section that bills models."""
    for key, value in data.items():
        if key in _SECTIONS:
            _expect(isinstance(value, dict), f"{key} is not an object")
            models = value.get("models", {})
            _expect(isinstance(models, dict), f"{key}.models is not an object")
            yield _SECTIONS[key], key, models
        elif key in _NESTED:
            _expect(isinstance(value, dict), f"{key} is not an object")
            for sub, part in value.items():
                yield from _nested_models(part, f"{key}.{sub}", _NESTED[key], warnings)
        elif key not in _NOT_SECTIONS and isinstance(value, dict) and "models" in value:
            category = key if key in CATEGORIES else "other"
            warnings.append(f'section "{key}" is not documented; imported as category {category}')
            yield from _nested_models(value, key, category, warnings)


def _nested_models(
    part: Any, where: str, category: str, warnings: list[str]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if not part:
        return
    if isinstance(part, dict) and isinstance(part.get("models"), dict):
        yield category, where, part["models"]
    else:
        warnings.append(f"{where} is not in the documented shape; not imported")


def _add_model(tally: _Tally, category: str, where: str, key: str, groups: Any) -> None:
    """Every event of one `<alias>::<model id>` entry into its lines."""
    _expect(isinstance(groups, dict), f"{where}: {key!r} is not an object")
    alias, _, model_id = key.rpartition("::")
    model_id = model_id.strip() or key
    match = identify(model_id)
    if category == "completion" and match.category in ("embeddings", "moderation"):
        category = match.category
    for group, events in groups.items():
        _expect(isinstance(events, list), f"{where}: {key}.{group} is not a list of events")
        line_key = (category, model_id, group)
        if line_key not in tally.sums:
            description = " • ".join(dict.fromkeys(filter(None, (alias, model_id, group))))
            unit = "tokens" if group in _USAGES else _unit_of(group) or _DEFAULT_UNITS.get(where)
            tally.sums[line_key] = _Sum(description, match, category, _USAGES.get(group), unit)
        for raw in events:
            tally.add(tally.sums[line_key], _event(raw, group, f"{where}: {key}.{group}"))


# --- the document


def _document(name: str, data: dict[str, Any]) -> Document:
    warnings: list[str] = []
    tally = _Tally(_prices(data["prices"]))
    with localcontext() as context:
        context.prec = PRECISION
        for category, where, models in _sections(data, warnings):
            for key, groups in models.items():
                _add_model(tally, category, where, key, groups)
    lines = [_line(s) for s in tally.sums.values() if s.quantity or s.exact]
    start, end = _period(data, tally.days, warnings)
    currency = _currency(data, warnings)
    warnings[:0] = _model_warnings(tally) + _price_warnings(tally)
    warnings += _vibe_warnings(data.get("vibe_usage"))
    spend = sum((line.amount for line in lines), Decimal(0))
    return Document(
        file=name,
        kind="usage_export",
        currency=currency,
        period_start=start,
        period_end=end,
        subtotal=spend,
        total=spend,
        lines=lines,
        warnings=warnings,
    )


def _line(s: _Sum) -> Line:
    amount = s.exact.quantize(CENT, rounding=ROUND_HALF_UP)
    price = next(iter(s.prices)) if len(s.prices) == 1 else None
    match = s.match
    line = Line(
        s.description, match.model, match.model_id, s.category, s.usage, s.quantity, s.unit, amount
    )
    line.unit_price = price  # for the registry's units x price check
    return line


def _period(
    data: dict[str, Any], days: list[str], warnings: list[str]
) -> tuple[date | None, date | None]:
    start = _day(data.get("start_date"), "start_date")
    end = _day(data.get("end_date"), "end_date")
    if start is not None and end is not None:
        if _MIDNIGHT.search(str(data["end_date"]).strip()) and end > start:
            end -= timedelta(days=1)  # an end at midnight is the first instant not covered
        return start, end
    if not days:
        raise _Problem("the usage data names no period (start_date, end_date) and no day of use")
    warnings.append("no start_date/end_date in the usage data: the period is the events' days")
    event_days = [_day(day, "an event's timestamp") for day in days]
    return min(d for d in event_days if d), max(d for d in event_days if d)


def _day(value: Any, what: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(str(value), day_first=None)
    except ValueError:
        raise _Problem(f"{what} {value!r} is not a date") from None


def _currency(data: dict[str, Any], warnings: list[str]) -> str:
    for key in ("currency", "currency_symbol"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            try:
                code = parse_currency(value.strip().upper())
            except ValueError:
                code = None
            if code is None:
                raise _Problem(f"{key} {value!r} is not a currency we know")
            return code
    warnings.append(f"no currency in the usage data; assumed {DEFAULT_CURRENCY}")
    return DEFAULT_CURRENCY


def _model_warnings(tally: _Tally) -> list[str]:
    billed = [s for s in tally.sums.values() if s.quantity or s.exact]
    unknown = dict.fromkeys(s.match.model for s in billed if not s.match.known)
    return [f'unknown model id "{model}"' for model in unknown]


def _price_warnings(tally: _Tally) -> list[str]:
    warnings = []
    for key, units in tally.unpriced.items():
        why = "two different prices for" if key in tally.prices else "no price for"
        warnings.append(f"{why} {' / '.join(key)}: {units} billed units counted at 0")
    return warnings


def _vibe_warnings(vibe: Any) -> list[str]:
    if vibe is None or (isinstance(vibe, Decimal | int) and not vibe):
        return []
    return [f"vibe_usage is {vibe} in the usage data; its unit is not documented: not imported"]
