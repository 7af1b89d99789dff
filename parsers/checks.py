"""Arithmetic and issuer checks on every parsed document; a failure is a warning, never a pass."""

from __future__ import annotations

import re
from decimal import Decimal

from parsers.base import Document

CENT = Decimal("0.01")
# The printed per-unit price can be rounded to 10 decimals, so units x price may miss the
# printed amount by a little more than a cent on large volumes: allow 0.5 % or a cent.
LINE_TOLERANCE = Decimal("0.005")

_MISTRAL_NAME = re.compile(r"Mistral\s*AI", re.IGNORECASE)
# SIREN 952 418 325 (RCS Paris), also the core of the French VAT number FRxx952418325.
_MISTRAL_COMPANY = re.compile(r"952\s?418\s?325")


def check_document(document: Document, text: str | None) -> list[str]:
    """The warnings for `document`; `text` is the document's own text where it has one."""
    warnings = _line_sum(document) + _totals(document) + _line_products(document)
    if text is not None and document.kind != "usage_export":
        warnings += _issuer(text)
    return warnings


def _line_sum(document: Document) -> list[str]:
    if document.subtotal is None or not document.lines:
        return []
    lines_total = sum((line.amount for line in document.lines), Decimal(0))
    if abs(lines_total - document.subtotal) > CENT:
        return [
            f"the lines add up to {lines_total}, but the subtotal printed is {document.subtotal}"
        ]
    return []


def _totals(document: Document) -> list[str]:
    if document.subtotal is None or document.total is None:
        return []
    expected = document.subtotal + (document.tax or 0) - document.prepaid_credits
    if abs(expected - document.total) > CENT:
        return [
            f"subtotal {document.subtotal} + tax {document.tax or 0} - prepaid credits "
            f"{document.prepaid_credits} = {expected}, but the total printed is "
            f"{document.total}"
        ]
    return []


def _line_products(document: Document) -> list[str]:
    warnings = []
    for line in document.lines:
        if line.quantity is None or line.unit_price is None:
            continue
        product = line.quantity * line.unit_price
        allowed = max(CENT, abs(line.amount) * LINE_TOLERANCE)
        if abs(product - line.amount) > allowed:
            warnings.append(
                f"line {line.description!r}: {line.quantity} x {line.unit_price} "
                f"= {product.quantize(CENT)}, but the amount printed is "
                f"{line.amount}"
            )
    return warnings


def _issuer(text: str) -> list[str]:
    if _MISTRAL_NAME.search(text) and _MISTRAL_COMPANY.search(text):
        return []
    if _MISTRAL_NAME.search(text):
        return [
            "the issuer names Mistral AI but not its company or VAT number "
            "(952 418 325); check that this is a genuine Mistral invoice"
        ]
    return ["the issuer is not Mistral AI"]
