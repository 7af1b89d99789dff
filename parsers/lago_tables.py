"""Two readers of a Lago invoice's fee table: pdfium's page text, and camelot as the fallback."""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pypdfium2 as pdfium

from parsers.base import Source
from parsers.lago_text import MONEY, NUM, SPACED_MONEY, SPACED_NUM

# docs/camelot.md measured both on the golden invoices: the page text, one row a line matched
# from the right, reads every row at about 2 ms a page; camelot `stream` on a per-page table area
# found from the text reads them all too, 10 to 50 times slower, and copes with what reading
# line by line cannot (a description wrapped onto two lines, cells out of order in the text).
# So the text is read first, and camelot only where that reading does not reconcile.

# stdlib logging, not structlog: unconfigured (as in a parse child) it prints nothing below
# WARNING, where structlog's default would print to stdout, into `parse --json`.
log = logging.getLogger(__name__)

PRICE = rf"{MONEY}(?:\s+(?:per|par|/)\s+{NUM})?"  # `€1.70 per 1,000`: a package price
RATE = rf"{NUM}\s?%"
# A cell holds one value, so a plain space in it can only group thousands.
_CELLS = tuple(
    re.compile(pattern)
    for pattern in (
        SPACED_NUM,
        rf"{SPACED_MONEY}(?:\s+(?:per|par|/)\s+{SPACED_NUM})?",
        rf"{SPACED_NUM}\s?%",
        SPACED_MONEY,
    )
)
ROW = re.compile(
    rf"(?P<description>\S.*?)\s+(?P<units>{NUM})\s+(?P<unit_price>{PRICE})"
    rf"\s+(?P<tax_rate>{RATE})\s+(?P<amount>{MONEY})"
)
MAX_ROW_CHARS = 400  # a longer "row" is not one, and would cost the regex dearly
# The column head ends the table head line (after `Fees from … to …` on pdfium's line).
COLUMNS = re.compile(
    r"\b(?:Units|Unit[ée]s)\s+(?:Unit\s*price|Prix\s*unitaire)\s+(?:Tax\s*rate|Taux\s*de\s*taxe)"
    r"\s+(?:Amount|Montant)\s*$",
    re.IGNORECASE,
)
_ASCII_SPACE = re.compile(r"[ \t\r\n]+")  # no-break spaces stay: they group thousands
_HEAD_CELL = re.compile(r"^(?:Units|Unit[ée]s)$", re.IGNORECASE)
# What ends the table on a page: the totals block or the page footer.
TABLE_END = re.compile(
    r"^(?:Sub-?\s?total|Sous[\s-]?total|Total)\b|\bPage\s+\d+\s+(?:of|sur|/)\s+\d+\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Cells:
    """One fee row as printed: the description and the four number columns."""

    description: str
    units: str
    unit_price: str
    tax_rate: str
    amount: str


@dataclass
class Reading:
    """The rows one reader found, and the row-like lines it could not split into columns."""

    reader: str
    rows: list[Cells] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


class RowReader(Protocol):
    """One way of reading the fee rows of a Lago invoice."""

    name: str

    def read(self, source: Source) -> Reading: ...


class TextRows:
    """pdfium's page text, one row a line, each matched from the right (the primary)."""

    name = "pdfium text"

    def read(self, source: Source) -> Reading:
        reading = Reading(self.name)
        for page in source.page_texts:
            for line in table_lines(page.splitlines()):
                match = ROW.fullmatch(line) if len(line) <= MAX_ROW_CHARS else None
                if match is None:
                    reading.unread.append(line)
                else:
                    reading.rows.append(Cells(**match.groupdict()))
        return reading


class CamelotRows:
    """camelot `stream` on the table area of each page, found from pdfium's character boxes
    (settings of docs/camelot.md: default row_tol and no fixed columns)."""

    name = "camelot stream"

    def read(self, source: Source) -> Reading:
        areas = table_areas(source.data)
        if not areas:
            return Reading(self.name, unread=["no table head found"])
        try:
            tables = _camelot_tables(source.data, areas)
        except Exception as exc:  # a third-party reader's failure is a non-reading
            log.debug("%s: camelot failed: %r", source.name, exc)
            return Reading(self.name, unread=[f"camelot could not read the table ({exc})"])
        reading = Reading(self.name)
        for table in tables:
            _add_table(reading, table.df.values.tolist())
        return reading


def table_lines(lines: Sequence[str]) -> Iterator[str]:
    """The non-empty lines between each page's column head and its totals or footer."""
    inside = False
    for raw in lines:
        line = raw.strip()
        if COLUMNS.search(line):
            inside = True
        elif inside and TABLE_END.search(line):
            inside = False
        elif inside and line:
            yield line


def table_areas(data: bytes) -> dict[int, str]:
    """Per page number, the table's `x1,y1,x2,y2` in PDF points (origin bottom-left): from
    the column head's top down to the top of the totals or footer line."""
    areas: dict[int, str] = {}
    document = pdfium.PdfDocument(data)
    try:
        for index in range(len(document)):
            page = document[index]
            lines = _positioned_lines(page)
            top = next((t for s, t in lines if COLUMNS.search(s)), None)
            if top is not None:
                end = next((t for s, t in lines if t < top and TABLE_END.search(s)), -1.0)
                areas[index + 1] = f"0,{top + 2:.1f},{page.get_width():.1f},{end + 1:.1f}"
            page.close()
    finally:
        document.close()
    return areas


def _positioned_lines(page: Any) -> list[tuple[str, float]]:
    """(NFC text, top) of each text line of a page, from the boxes of its characters."""
    text = page.get_textpage()
    try:
        whole, count = str(text.get_text_range()), int(text.count_chars())
        lines, start = [], 0
        for line in whole.split("\n"):
            end = min(start + len(line), count)
            tops = [text.get_charbox(i)[3] for i in range(start, end) if whole[i] > " "]
            start += len(line) + 1
            if tops:
                lines.append((unicodedata.normalize("NFC", line.strip()), float(max(tops))))
        return lines
    finally:
        text.close()


def _camelot_tables(data: bytes, areas: dict[int, str]) -> Any:
    from camelot.io import read_pdf  # 0.8 s and 100 MB to import: only where text failed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tables found in table area": an empty page
        return read_pdf(
            data,
            pages=",".join(str(page) for page in areas),
            flavor="stream",
            per_page={page: {"table_areas": [area]} for page, area in areas.items()},
            strip_text="\n",
            suppress_stdout=True,
        )


def _add_table(reading: Reading, table: list[list[Any]]) -> None:
    """The fee rows of one camelot table: the last four filled cells are the numbers."""
    for raw in table:
        cells = [
            _ASCII_SPACE.sub(" ", unicodedata.normalize("NFC", str(cell))).strip() for cell in raw
        ]
        filled = [cell for cell in cells if cell]
        if not filled or any(_HEAD_CELL.match(cell) for cell in filled):
            continue
        if len(filled) == 1 and cells[0] and reading.rows:
            # A description wrapped onto a line of its own: it continues the row above.
            last = reading.rows[-1]
            reading.rows[-1] = replace(last, description=f"{last.description} {filled[0]}")
        elif len(filled) >= 5 and _numbers_fit(filled[-4:]):
            reading.rows.append(Cells(" ".join(filled[:-4]), *filled[-4:]))
        else:
            reading.unread.append(" | ".join(filled))


def _numbers_fit(cells: Sequence[str]) -> bool:
    return all(pattern.fullmatch(cell) for pattern, cell in zip(_CELLS, cells, strict=True))
