"""Billed ids and aliases map to the canonical model names of MISTRAL_FORMATS.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.base import CATEGORIES
from parsers.models import Catalogue, CatalogueEntry, ModelMatch, catalogue, identify


@pytest.mark.parametrize(
    ("name", "model", "model_id", "category"),
    [
        ("mistral-large-2411", "Mistral Large", "mistral-large-2411", "completion"),
        ("mistral-large-latest", "Mistral Large", None, "completion"),
        ("mistral-large", "Mistral Large", None, "completion"),
        ("Mistral Large", "Mistral Large", None, "completion"),
        ("codestral-latest", "Codestral", None, "completion"),
        ("codestral-2508", "Codestral", "codestral-2508", "completion"),
        ("codestral-embed-2505", "Codestral Embed", "codestral-embed-2505", "embeddings"),
        ("mistral-embed", "Mistral Embed", None, "embeddings"),
        ("mistral-moderation-2411", "Mistral Moderation", "mistral-moderation-2411", "moderation"),
        ("mistral-ocr-2505", "Mistral OCR", "mistral-ocr-2505", "ocr"),
        ("voxtral-mini-transcribe-2507", "Voxtral Mini", "voxtral-mini-transcribe-2507", "audio"),
        ("open-mistral-nemo-2407", "Mistral Nemo", "open-mistral-nemo-2407", "completion"),
        ("devstral-small-2507", "Devstral Small", "devstral-small-2507", "completion"),
        ("devstral-2512", "Devstral", "devstral-2512", "completion"),
        ("Pixtral 12B", "Pixtral 12B", None, "completion"),
        ("MISTRAL-SMALL-2506", "Mistral Small", "MISTRAL-SMALL-2506", "completion"),
    ],
)
def test_ids_and_aliases_map_to_their_family(
    name: str, model: str, model_id: str | None, category: str
) -> None:
    assert identify(name) == ModelMatch(model, model_id, category, known=True)


def test_an_unknown_id_is_kept_as_the_model_and_flagged() -> None:
    assert identify("gpt-4o") == ModelMatch("gpt-4o", "gpt-4o", "other", known=False)
    # A prefix matches only up to a word boundary.
    assert identify("mistral-smallish-1").known is False


def test_the_longest_prefix_wins() -> None:
    assert identify("codestral-embed").model == "Codestral Embed"
    assert identify("codestral-22b").model == "Codestral"
    assert identify("devstral-medium-2507").model == "Devstral Medium"


def test_the_shipped_catalogue_covers_the_documented_table() -> None:
    entries = {entry.prefix: entry for entry in catalogue().entries}
    assert len(entries) == 23
    assert {entry.category for entry in entries.values()} <= CATEGORIES
    assert entries["mistral-nemo"].model == entries["open-mistral-nemo"].model == "Mistral Nemo"
    assert entries["voxtral-small"].category == "audio"


def test_a_new_model_is_one_line() -> None:
    custom = Catalogue.from_csv("prefix,model,category\nmistral-tiny,Mistral Tiny,completion\n")
    assert custom.identify("mistral-tiny-2312").model == "Mistral Tiny"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name,kind\n", "header"),
        ("prefix,model,category\nmistral-x,Mistral X\n", "line 2"),
        ("prefix,model,category\nmistral-x,Mistral X,chat\n", "unknown category"),
        ("prefix,model,category\nMistral-X,Mistral X,completion\n", "lower-case"),
        ("prefix,model,category\na,A,other\na,B,other\n", "repeated"),
    ],
)
def test_a_bad_catalogue_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Catalogue.from_csv(text)


ENTRIES = catalogue().entries


@given(st.sampled_from(ENTRIES), st.from_regex(r"[0-9]{4}", fullmatch=True))
def test_every_versioned_id_keeps_its_id(entry: CatalogueEntry, version: str) -> None:
    model_id = f"{entry.prefix}-{version}"
    assert identify(model_id) == ModelMatch(entry.model, model_id, entry.category, True)
    assert identify(model_id.upper()).model == entry.model


@given(st.sampled_from(ENTRIES))
def test_every_alias_and_display_name_names_the_family_without_an_id(
    entry: CatalogueEntry,
) -> None:
    for alias in (f"{entry.prefix}-latest", entry.prefix, entry.model):
        assert identify(alias) == ModelMatch(entry.model, None, entry.category, True)
