"""The canonical model catalogue (models.csv): which model and category a billed id names."""

from __future__ import annotations

import csv
import functools
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from parsers.base import CATEGORIES

__all__ = ["Catalogue", "CatalogueEntry", "ModelMatch", "catalogue", "identify"]

_HEADER = ["prefix", "model", "category"]


@dataclass(frozen=True)
class CatalogueEntry:
    """One line of models.csv: ids starting with `prefix` are `model`, billed as `category`."""

    prefix: str
    model: str
    category: str


@dataclass(frozen=True)
class ModelMatch:
    """What a billed id or alias names. `model_id` is None where only an alias is named;
    `known` is False for an id outside the catalogue (its `model` is then the id itself)."""

    model: str
    model_id: str | None
    category: str
    known: bool


class Catalogue:
    """Model families by id prefix, matched longest prefix first, case-insensitively."""

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        self.entries = tuple(sorted(entries, key=lambda e: len(e.prefix), reverse=True))

    @classmethod
    def from_csv(cls, text: str) -> Catalogue:
        """A catalogue from the text of a `prefix,model,category` file; ValueError if bad."""
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [cell.strip() for cell in rows[0]] != _HEADER:
            raise ValueError(f"model catalogue: the header must be {','.join(_HEADER)}")
        entries: dict[str, CatalogueEntry] = {}
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            entry = _entry(row, number)
            if entry.prefix in entries:
                raise ValueError(f"model catalogue line {number}: {entry.prefix!r} is repeated")
            entries[entry.prefix] = entry
        return cls(entries.values())

    def identify(self, name: str) -> ModelMatch:
        """The model a billed id (`mistral-large-2411`), an alias (`mistral-large-latest`,
        `codestral`) or a console display name (`Mistral Large`) stands for."""
        name = unicodedata.normalize("NFC", name).strip()
        if not name:
            raise ValueError("empty model name")
        # Ids never contain spaces, so a name with one is a display name, i.e. an alias.
        display = len(name.split()) > 1
        key = "-".join(name.lower().split())
        entry = self._longest_prefix(key)
        if entry is None:
            return ModelMatch(name, None if display else name, "other", known=False)
        alias = display or key == entry.prefix or key.endswith("-latest")
        return ModelMatch(entry.model, None if alias else name, entry.category, known=True)

    def _longest_prefix(self, key: str) -> CatalogueEntry | None:
        for entry in self.entries:
            rest = key.removeprefix(entry.prefix)
            # The prefix must end at a word boundary: `mistral-small` is not `mistral-smallx`.
            if rest != key and (not rest or not rest[0].isalnum()):
                return entry
        return None


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    text = resources.files("parsers").joinpath("models.csv").read_text(encoding="utf-8")
    return Catalogue.from_csv(text)


def identify(name: str) -> ModelMatch:
    """`Catalogue.identify` on the shipped catalogue."""
    return catalogue().identify(name)


def _entry(row: list[str], number: int) -> CatalogueEntry:
    cells = [cell.strip() for cell in row]
    if len(cells) != len(_HEADER) or not all(cells):
        raise ValueError(f"model catalogue line {number}: expected prefix,model,category")
    prefix, model, category = cells
    if prefix != prefix.lower() or len(prefix.split()) > 1:
        raise ValueError(f"model catalogue line {number}: {prefix!r} is not a lower-case id")
    if category not in CATEGORIES:
        raise ValueError(f"model catalogue line {number}: unknown category {category!r}")
    return CatalogueEntry(prefix, model, category)
