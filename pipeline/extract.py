"""Postings in, extraction records out — the spaCy pipeline run over a batch.

Records are plain dicts (JSON-ready), never spaCy Docs: they are what gets stored, compared and
sent between processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from spacy.language import Language

from .ingest import Posting
from .nlp import EXTRACTOR_VERSION


@dataclass
class Extraction:
    posting_id: str
    content_hash: str
    taxonomy_version: str
    extractor_version: str
    data: dict[str, Any]


def _title_end(posting: Posting) -> int:
    """Where the title line ends in the text (0 when the text does not open with the title)."""
    if not posting.title:
        return 0
    first = posting.text.split("\n", 1)[0]
    return len(first) if posting.title.lower() in first.lower() else 0


def extract(postings: Iterable[Posting], nlp: Language, *, batch_size: int = 64) -> Iterator[tuple[Posting, Extraction]]:
    """Run the pipeline over postings, streaming: memory stays flat however many there are."""
    tax_version = nlp.meta.get("jobfit", {}).get("taxonomy_version", "unknown")
    buffer: list[Posting] = []

    def run(batch: list[Posting]) -> Iterator[tuple[Posting, Extraction]]:
        docs = []
        for p in batch:
            doc = nlp.make_doc(p.text)
            doc.user_data["text"] = p.text  # spares the components rebuilding it from tokens
            docs.append(doc)
        for posting, doc in zip(batch, nlp.pipe(docs, batch_size=batch_size)):
            data = dict(doc.user_data["jobfit"])
            end = _title_end(posting)
            for sig in data["signals"]:
                sig["in_title"] = sig["start"] < end
            yield posting, Extraction(posting.posting_id, posting.content_hash, tax_version, EXTRACTOR_VERSION, data)

    for posting in postings:
        buffer.append(posting)
        if len(buffer) >= batch_size:
            yield from run(buffer)
            buffer = []
    if buffer:
        yield from run(buffer)
