"""The golden PDFs render as meant, print what their expected JSON says, and the broken ones
are broken as meant."""

from __future__ import annotations

import json
import os
import unicodedata
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from fixtures import make_documents as docs


@pytest.fixture(scope="module", autouse=True)
def dejavu_fonts() -> None:
    """The generator draws with DejaVu Sans (Debian's fonts-dejavu-core)."""
    try:
        docs.font_paths()
    except docs.FontMissing as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI is set, so the fixture tests may not skip: {exc}")
        pytest.skip(str(exc))


def page_texts(data: bytes, password: str | None = None) -> list[str]:
    pdf = pypdfium2.PdfDocument(data, password=password)
    try:
        return [page.get_textpage().get_text_range() for page in pdf]
    finally:
        pdf.close()


def squeeze(text: str) -> str:
    """NFC, every run of whitespace (no-break ones too) as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


LAGO = [k for k, s in docs.SPECS.items() if s.layout.startswith("lago")]
STRIPE = [k for k, s in docs.SPECS.items() if s.layout == "stripe"]


def test_the_catalogue_covers_the_golden_cases() -> None:
    specs = docs.SPECS
    assert len(specs) >= 8
    assert {s.language for s in specs.values()} == {"en", "fr"}
    assert {s.currency for s in specs.values()} == {"EUR", "USD"}
    assert {s.tax for s in specs.values()} >= {"vat20", "reverse_charge", "exempt"}
    assert any(s.prepaid_credits for s in specs.values())
    assert any(s.pages == 3 and len(s.rows) >= 80 for s in specs.values())
    assert {r.usage for s in specs.values() for r in s.rows} >= {"pages", "seconds", "cached"}
    assert {s.layout for s in specs.values()} == {"lago_usage", "lago_advance", "stripe"}
    assert all(spec.file == f"{key}.pdf" for key, spec in specs.items())


@pytest.mark.parametrize("key", list(docs.SPECS))
def test_each_spec_renders_to_its_pages_with_its_number(key: str) -> None:
    spec = docs.SPECS[key]
    pages = page_texts(docs.render(spec))
    assert len(pages) == spec.pages
    text = unicodedata.normalize("NFC", "".join(pages))
    if spec.layout == "stripe":
        number = spec.number.replace("-", "\ufffe") if spec.nul_dash else spec.number
        assert f"Invoicenumber {number}" in text  # no space glyphs: words run together
        assert "Dateofissue" in text
    else:
        assert spec.number in text


@pytest.mark.parametrize("key", LAGO)
def test_every_lago_row_and_total_is_printed_as_expected(key: str) -> None:
    spec = docs.SPECS[key]
    lines = {squeeze(line) for page in page_texts(docs.render(spec)) for line in page.split("\n")}
    rate = 20 if spec.tax == "vat20" else 0
    for row, line in zip(spec.rows, docs.expected(spec)["documents"][0]["lines"], strict=True):
        printed = [
            line["description"],
            docs.units_text(row.units, spec.language, spec.group_units),
            docs.unit_price_text(row, spec.currency, spec.language),
            docs.percent(rate, spec.language),
            docs.money(Decimal(line["amount"]), spec.currency, spec.language),
        ]
        assert squeeze(" ".join(printed)) in lines
    total = docs.money(spec.total, spec.currency, spec.language)
    assert squeeze(f"Total {total}") in lines


@pytest.mark.parametrize("key", list(docs.SPECS))
def test_expected_json_adds_up(key: str) -> None:
    document = docs.expected(docs.SPECS[key])["documents"][0]
    spec = docs.SPECS[key]
    amounts = [Decimal(line["amount"]) for line in document["lines"]]
    assert sum(amounts) == Decimal(document["subtotal"])
    assert Decimal(document["subtotal"]) + Decimal(document["tax"]) - spec.prepaid_credits == (
        Decimal(document["total"])
    )
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
    assert not {"fx_rate", "fx_date"} & set(document)
    assert document["kind"] == ("credit_purchase" if spec.layout == "lago_advance" else "invoice")


def test_the_three_page_invoice_repeats_its_table_head_on_every_page() -> None:
    pages = page_texts(docs.render(docs.SPECS["lago_en_eur_3_pages"]))
    head = "Fees from Oct 1, 2026 to Oct 31, 2026 Units Unit price Tax rate Amount"
    assert all(head in squeeze(page) for page in pages)
    assert "Subtotal (excl. tax)" in pages[-1]
    assert "Subtotal" not in pages[0] + pages[1]


def test_the_french_invoice_has_french_dates_narrow_spaces_and_nfd_text() -> None:
    text = "".join(page_texts(docs.render(docs.SPECS["lago_fr_eur"])))
    assert not unicodedata.is_normalized("NFC", text)  # é is e + U+0301, as on real ones
    text = unicodedata.normalize("NFC", text)
    assert "Date d'émission 1 févr. 2026" in text
    assert "Frais de conso. du 1 janv. 2026 au 31 janv. 2026" in text
    assert "Sous total (HT) 2\u202f457,77\u00a0€" in text


def test_the_stripe_dash_extracts_as_u0000() -> None:
    spec = docs.SPECS["stripe_le_chat_team"]
    pdf = pypdfium2.PdfDocument(docs.render(spec))
    try:
        text = pdf[0].get_textpage()
        whole = text.get_text_range()
        start = whole.index("CJV04PWS")
        codes = [pdfium_c.FPDFText_GetUnicode(text, start + i) for i in range(len(spec.number))]
    finally:
        pdf.close()
    assert codes[8] == 0  # the dash; get_text_range shows it as U+FFFE
    assert "".join(map(chr, codes)).replace("\x00", "-") == spec.number


def test_renders_are_reproducible() -> None:
    spec = docs.SPECS["stripe_vibe_pro"]
    assert docs.render.__wrapped__(spec) == docs.render.__wrapped__(spec)


def test_the_encrypted_invoice_needs_its_password() -> None:
    data = docs.encrypted_invoice()
    with pytest.raises(pypdfium2.PdfiumError, match="password"):
        pypdfium2.PdfDocument(data)
    assert docs.SPECS["lago_en_eur"].number in page_texts(data, docs.ENCRYPTED_PASSWORD)[0]


def test_the_scan_is_an_image_without_text() -> None:
    data = docs.scanned_invoice()
    assert page_texts(data) == [""]
    pdf = pypdfium2.PdfDocument(data)
    try:
        kinds = [obj.type for obj in pdf[0].get_objects()]
    finally:
        pdf.close()
    assert kinds == [pdfium_c.FPDF_PAGEOBJ_IMAGE]


@pytest.mark.parametrize("make", [docs.truncated_invoice, docs.empty_file])
def test_the_truncated_and_empty_files_do_not_open(make: object) -> None:
    assert callable(make)
    with pytest.raises(pypdfium2.PdfiumError):
        pypdfium2.PdfDocument(make())


def test_the_foreign_invoice_is_openai_and_well_formed() -> None:
    text = "".join(page_texts(docs.foreign_provider_invoice()))
    assert "OpenAI, LLC" in text
    assert "Invoice number 5D2C9B0E-0021" in text
    assert "Mistral" not in text


def test_the_command_writes_every_pdf_with_its_json(tmp_path: Path) -> None:
    assert docs.main([str(tmp_path)]) == 0
    for key, spec in docs.SPECS.items():
        assert (tmp_path / f"{key}.pdf").read_bytes().startswith(b"%PDF-")
        assert json.loads((tmp_path / f"{key}.json").read_text()) == docs.expected(spec)
    assert {p.name for p in tmp_path.glob("broken_*.pdf")} == {
        f"broken_{name}.pdf" for name in docs.BROKEN
    }
