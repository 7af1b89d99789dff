"""A file handed to the parsers: its format judged by content, and its text read once."""

from __future__ import annotations

import codecs
import unicodedata
from functools import cached_property

import pypdfium2 as pdfium

from parsers.base import Refused

MAX_PAGES = 500  # RELIABILITY.md
PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
_TEXT_ENCODINGS = ("utf-8", "cp1252")  # after BOM detection; cp1252 decodes any byte but 5


class FileSource:
    """The bytes and name of one attachment, with views made on first use."""

    def __init__(self, name: str, data: bytes, max_pages: int = MAX_PAGES) -> None:
        self.name = name
        self.data = data
        self.max_pages = max_pages

    @cached_property
    def is_pdf(self) -> bool:
        return b"%PDF-" in self.data[:1024]

    @cached_property
    def format(self) -> str:
        head = self.data[:1024]
        if self.is_pdf:
            return "pdf"
        if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
            return "office"  # zip (xlsx, docx) or OLE (xls, doc, msg)
        try:
            text = self.text
        except Refused:
            return "unknown"
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            return "json"
        first_line = stripped.split("\n", 1)[0]
        if any(sep in first_line for sep in (",", ";", "\t")):
            return "csv"
        return "unknown"

    @cached_property
    def page_texts(self) -> list[str]:
        if not self.is_pdf:
            return []
        document = self._open_pdf()
        try:
            if len(document) > self.max_pages:
                raise Refused(
                    self.name,
                    f"the PDF has {len(document)} pages; we read at most {self.max_pages}",
                )
            pages = [_nfc(_page_text(document, i)) for i in range(len(document))]
        finally:
            document.close()
        if not any(page.strip() for page in pages):
            raise Refused(
                self.name,
                "the PDF has no text layer (it looks like a scan or a "
                "photo); please send the PDF as downloaded from Mistral's console",
            )
        return pages

    @cached_property
    def text(self) -> str:
        if self.is_pdf:
            return "\f".join(self.page_texts)
        return _nfc(_decode(self.name, self.data))

    def _open_pdf(self) -> pdfium.PdfDocument:
        try:
            return pdfium.PdfDocument(self.data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == PDFIUM_PASSWORD_ERROR:
                raise Refused(
                    self.name, "the PDF is password-protected; please send it without a password"
                ) from exc
            raise Refused(
                self.name,
                "the PDF is damaged or incomplete (was it cut off in "
                "transit?); please send it again",
            ) from exc


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()


def _decode(name: str, data: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise Refused(name, f"the file says it is {encoding} but is not") from exc
    if b"\x00" in data[:4096]:
        raise Refused(name, "the file is binary, not text, PDF or JSON")
    for encoding in _TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Refused(
        name,
        "the text cannot be decoded (neither UTF-8 nor Windows-1252); please export it as UTF-8",
    )


def _nfc(text: str) -> str:
    # Real invoices come out of PDF extraction in NFD (é as e + U+0301): compose first.
    return unicodedata.normalize("NFC", text)
