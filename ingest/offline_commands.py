"""The commands that need no database: `parse` (documents offline) and `fx load` (ECB rates)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from parsers.base import Document, Refused
from parsers.fx import Rates, install_history
from parsers.registry import convert_to_usd
from parsers.sandbox import parse_in_child


def parse_files(paths: Sequence[str], as_json: bool, data_dir: Path) -> int:
    """Print the parse JSON (or a table) of every file; exit 2 if any file failed."""
    rates = Rates.load(data_dir)
    documents: list[Document] = []
    failed = False
    for name in paths:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"error: {name}: {exc.strerror or exc} (check the path)", file=sys.stderr)
            failed = True
            continue
        try:
            parsed = parse_in_child(path.name, data)
        except Refused as refusal:
            print(f"error: {name}: {refusal.reason}", file=sys.stderr)
            failed = True
            continue
        convert_to_usd(parsed, rates)
        documents.extend(parsed)
    if as_json:
        json.dump(
            {"documents": [d.to_json() for d in documents]},
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        print("\n\n".join(document_table(d) for d in documents))
    return 2 if failed else 0


def load_fx(path: str, data_dir: Path) -> int:
    try:
        summary = install_history(Path(path), data_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc} (give the ECB's eurofxref-hist.zip or .csv)", file=sys.stderr)
        return 2
    print(
        f"ECB rates installed: {summary.first_day} to {summary.last_day}, "
        f"{len(summary.currencies)} currencies"
    )
    return 0


def document_table(d: Document) -> str:
    """A person's view of one parsed document."""
    period = f"{d.period_start} to {d.period_end}" if d.period_start else "-"
    fx = f"{d.fx_rate} USD/{d.currency} (ECB {d.fx_date})" if d.fx_rate else "no rate yet"
    head = [
        f"{d.file}: {d.kind.replace('_', ' ')} {d.number or ''}".rstrip(),
        f"  issued {d.issue_date or '-'}, period {period}, {d.currency}, {fx}",
    ]
    rows = [f"  {'MODEL':<24} {'USAGE':<7} {'QUANTITY':>14} {'AMOUNT':>12} {'USD':>12}"]
    for line in d.lines:
        rows.append(
            f"  {line.model[:24]:<24} {line.usage or '-':<7} "
            f"{_number(line.quantity):>14} {_number(line.amount):>12} "
            f"{_number(line.amount_usd):>12}"
        )
    totals = [f"  subtotal {_number(d.subtotal)}, tax {_number(d.tax)}, total {_number(d.total)}"]
    warnings = [f"  warning: {w}" for w in d.warnings]
    return "\n".join(head + rows + totals + warnings)


def _number(value: object) -> str:
    return "-" if value is None else str(value)
