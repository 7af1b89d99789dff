"""Every real-world PDF and CSV of ../shared/corpus either parses or is refused with a reason,
through the same child process the service uses: never a crash, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.base import Refused
from parsers.sandbox import parse_in_child

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
FILES = sorted(
    p
    for folder in ("pdfs", "csv")
    if (CORPUS / folder).is_dir()
    for p in (CORPUS / folder).rglob("*")
    if p.is_file() and p.suffix.lower() in (".pdf", ".csv")
)


@pytest.mark.skipif(not FILES, reason=f"the shared corpus is not at {CORPUS}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_a_corpus_file_parses_or_is_refused_with_a_reason(path: Path) -> None:
    try:
        documents = parse_in_child(path.name, path.read_bytes())
    except Refused as refusal:
        assert refusal.file == path.name
        assert len(refusal.reason) > 15 and "Traceback" not in refusal.reason
        return
    for document in documents:
        assert document.file == path.name
        document.to_json()  # serialisable as the contract's parse JSON
