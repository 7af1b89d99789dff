"""Camelot flavours on the golden invoices: rows read right, and milliseconds per page.

For every golden PDF of tests/fixtures/make_documents.py and every configuration below, count
the billed rows whose description, units and amount cells all come out as the invoice prints
them (whitespace ignored, NFC), and time the extraction (median of --repeat runs). The
baseline, measured in the same run, is no table extractor at all: pypdfium2's page text, one
line a row, read with a regular expression.

    .venv/bin/python benchmarks/camelot_flavours.py [--repeat 3] [--only lago_en_eur,...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import camelot
import playa
import pypdfium2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fixtures import make_documents as docs  # noqa: E402

Rows = list[list[str]]  # the cells of every extracted row, tables one after another


# --- what each fixture should give


def expected_rows(spec: docs.Spec) -> list[tuple[str, str, str]]:
    """(description, units, amount) as printed, normalised."""
    rows = []
    for row in spec.rows:
        if spec.layout == "stripe":
            units = f"{row.units:f}"
        else:
            units = docs.units_text(row.units, spec.language, spec.group_units)
        amount = docs.money(row.amount, spec.currency, spec.language)
        rows.append((norm(row.description(spec.layout)), norm(units), norm(amount)))
    return rows


def norm(cell: str) -> str:
    """NFC, no whitespace of any kind (Stripe's text has none; Lago's has odd ones)."""
    return "".join(unicodedata.normalize("NFC", cell).split())


def score(rows: Rows, want: list[tuple[str, str, str]]) -> int:
    """How many expected rows come out whole: one extracted row holds the description,
    the units and the amount as cells of their own, in this order."""
    pool = Counter(want)
    found = 0
    for cells in rows:
        normed = [norm(c) for c in cells]
        for key in list(pool):
            if pool[key] and _in_order(normed, key):
                pool[key] -= 1
                found += 1
                break
    return found


def _in_order(cells: list[str], key: tuple[str, str, str]) -> bool:
    position = 0
    for wanted in key:
        try:
            position = cells.index(wanted, position) + 1
        except ValueError:
            return False
    return True


# --- the configurations


@dataclass(frozen=True)
class Config:
    name: str
    run: Callable[[bytes], Rows]


def camelot_rows(data: bytes, **kwargs: Any) -> Rows:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = camelot.read_pdf(data, pages="all", suppress_stdout=True, **kwargs)
    return [list(map(str, r)) for t in tables for r in t.df.itertuples(index=False)]


def camelot_tuned(data: bytes, flavor: str, **kwargs: Any) -> Rows:
    """The table area of each page found from the text first: from the table head down to
    the totals (or the footer), read with a per-page `table_areas`."""
    areas = table_areas(data)
    per_page = {page: {"table_areas": [area]} for page, area in areas.items()}
    if not per_page:
        return []
    pages = ",".join(str(p) for p in per_page)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = camelot.read_pdf(
            data, pages=pages, flavor=flavor, per_page=per_page, suppress_stdout=True, **kwargs
        )
    return [list(map(str, r)) for t in tables for r in t.df.itertuples(index=False)]


HEAD = re.compile(r"^(Fees from |Frais de conso|Prepaid credits|Crédits prépayés|Description)")
END = re.compile(r"^(Subtotal|Sous total|Page \d|Mistral AI SAS ·)")


def table_areas(data: bytes) -> dict[int, str]:
    """Per page, `x1,y1,x2,y2` (PDF points, origin bottom-left) from the table head's top
    to just above the first totals or footer line, found with pypdfium2's character boxes."""
    areas = {}
    pdf = pypdfium2.PdfDocument(data)
    try:
        for number, page in enumerate(pdf, start=1):
            text = page.get_textpage()
            lines = list(_lines(text))
            top = next((t for s, t, _ in lines if HEAD.match(s)), None)
            if top is None:
                continue
            bottom = next((t for s, t, _ in lines if t < top and END.match(s)), 0.0)
            areas[number] = f"0,{top + 2:.1f},{page.get_width():.1f},{bottom + 1:.1f}"
    finally:
        pdf.close()
    return areas


def _lines(text: pypdfium2.PdfTextPage) -> Iterator[tuple[str, float, float]]:
    """(text, top, bottom) of each text line, top to bottom, from the characters' boxes:
    pdfium's text rects are one glyph wide on Stripe's glyph-by-glyph pages."""
    whole = text.get_text_range()
    start = 0
    for line in whole.split("\n"):
        boxes = [
            text.get_charbox(i) for i in range(start, start + len(line)) if not whole[i].isspace()
        ]
        start += len(line) + 1
        if boxes:
            yield line.strip(), max(b[3] for b in boxes), min(b[1] for b in boxes)


ROW = re.compile(
    r"^(?P<desc>.+?) (?P<units>[\d.,\u202f\u00a0 ]+?) (?P<price>\S*\d[^%]*?)"
    r" (?P<rate>\d+[.,]\d+\s?%) (?P<amount>-?\S*\d[\d.,\u202f\u00a0 ]*(?:\s?[€$])?)$"
)
STRIPE_ROW = re.compile(r"^(?P<desc>\S.*?)\s+(?P<units>\d+)\s+(?P<price>\S+)\s+(?P<amount>\S+)$")


def pdfium_regex(data: bytes) -> Rows:
    """No table extractor: page text, one line a row, one regular expression per layout."""
    pdf = pypdfium2.PdfDocument(data)
    rows = []
    try:
        for page in pdf:
            for line in page.get_textpage().get_text_range().splitlines():
                line = unicodedata.normalize("NFC", line).strip()
                match = ROW.match(line) or STRIPE_ROW.match(line)
                if match:
                    rows.append([match["desc"], match["units"], match["amount"]])
    finally:
        pdf.close()
    return rows


CONFIGS = [  # name, run; every camelot one reads pages="all" unless it finds its areas first
    Config("pdfium+regex", pdfium_regex),  # the baseline: no camelot
    Config("lattice", lambda d: camelot_rows(d, flavor="lattice")),
    Config("stream", lambda d: camelot_rows(d, flavor="stream")),
    Config("network", lambda d: camelot_rows(d, flavor="network")),
    Config("hybrid", lambda d: camelot_rows(d, flavor="hybrid")),
    Config("hybrid vector", lambda d: camelot_rows(d, flavor="hybrid", engine="vector")),
    Config("auto", lambda d: camelot_rows(d, flavor="auto")),
    Config("stream+areas", lambda d: camelot_tuned(d, "stream")),
    Config("network+areas", lambda d: camelot_tuned(d, "network")),
]


# --- header fields: pypdfium2 against playa


def text_pdfium(data: bytes) -> list[str]:
    pdf = pypdfium2.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


def text_playa(data: bytes) -> list[str]:
    doc = playa.parse(data)
    try:
        return [page.extract_text() for page in doc.pages]
    finally:
        doc.close()


def header_fields(spec: docs.Spec) -> dict[str, str]:
    """The header fields as printed, normalised like the cells."""
    if spec.layout == "stripe":
        issued = docs.MONTHS_EN_LONG[spec.issue_date.month - 1]
        issued += f" {spec.issue_date.day}, {spec.issue_date.year}"
    else:
        issued = docs.day_text(spec.issue_date, spec.language)
    total = docs.money(spec.total, spec.currency, spec.language)
    return {"number": spec.number, "issue date": issued, "total": total}


def fields_found(pages: list[str], spec: docs.Spec, repair: bool) -> int:
    """How many header fields the text holds; `repair` reads U+0000 and U+FFFE as a dash."""
    text = norm("".join(pages))
    if repair:
        text = text.replace("\x00", "-").replace("\ufffe", "-")
    return sum(norm(value) in text for value in header_fields(spec).values())


# --- running and printing


def timed(run: Callable[[bytes], Any], data: bytes, repeat: int) -> tuple[Any, float]:
    """The result of run(data) and the median of `repeat` wall times, in seconds."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run(data)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated SPECS keys")
    args = parser.parse_args()
    keys = args.only.split(",") if args.only else list(docs.SPECS)
    print(
        f"# {dt.datetime.now().isoformat(timespec='seconds')}  {platform.node()}  "
        f"{platform.machine()}  {os.cpu_count()} cpus  Python {platform.python_version()}  "
        f"camelot {camelot.__version__}  pypdfium2 {version('pypdfium2')}  "
        f"playa {version('playa-pdf')}"
    )
    fixtures = {k: (docs.render(docs.SPECS[k]), docs.SPECS[k]) for k in keys}
    found: dict[str, list[str]] = {k: [] for k in keys}
    per_page: dict[str, list[float]] = {c.name: [] for c in CONFIGS}
    for config in CONFIGS:
        for key, (data, spec) in fixtures.items():
            want = expected_rows(spec)
            rows, seconds = timed(config.run, data, args.repeat)
            found[key].append(f"{score(rows, want)}/{len(want)}")
            per_page[config.name].append(seconds * 1000 / spec.pages)
    print("\nRows read right (of those billed), and ms per page (median over the fixtures)\n")
    print("| fixture | pages | " + " | ".join(c.name for c in CONFIGS) + " |")
    print("|---|---|" + "---|" * len(CONFIGS))
    for key, cells in found.items():
        print(f"| {key} | {fixtures[key][1].pages} | " + " | ".join(cells) + " |")
    times = (f"{statistics.median(per_page[c.name]):.0f}" for c in CONFIGS)
    print("| **ms/page** | | " + " | ".join(times) + " |")
    print("\nPage text: ms per page (median) and header fields found (number, issue date, total)\n")
    print("| extractor | ms/page | fields as printed | with U+0000/U+FFFE read as a dash |")
    print("|---|---|---|---|")
    extractors = (("pypdfium2 get_text_range", text_pdfium), ("playa extract_text", text_playa))
    for name, extract in extractors:
        times_, exact, repaired = [], 0, 0
        for data, spec in fixtures.values():
            pages, seconds = timed(extract, data, args.repeat)
            times_.append(seconds * 1000 / spec.pages)
            exact += fields_found(pages, spec, repair=False)
            repaired += fields_found(pages, spec, repair=True)
        total = 3 * len(fixtures)
        median = statistics.median(times_)
        print(f"| {name} | {median:.1f} | {exact}/{total} | {repaired}/{total} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
