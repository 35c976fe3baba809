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


@dataclass
class ExtractError:
    """A posting the pipeline could not process: reported and left pending for the next run."""

    posting_id: str
    source: str
    reason: str


def extract(postings: Iterable[Posting], nlp: Language, *, batch_size: int = 64) -> Iterator[tuple[Posting, Extraction | ExtractError]]:
    """Run the pipeline over postings, streaming: memory stays flat however many there are.
    A posting that breaks the pipeline is reported as an :class:`ExtractError`; the rest go on."""
    tax_version = nlp.meta.get("jobfit", {}).get("taxonomy_version", "unknown")
    facts = nlp.get_pipe("jobfit_resolver").facts
    buffer: list[Posting] = []

    def docs_of(batch: list[Posting]) -> list[Any]:
        docs = []
        for p in batch:
            doc = nlp.make_doc(p.text)
            doc.user_data["text"] = p.text  # spares the components rebuilding it from tokens
            doc.user_data["title_end"] = _title_end(p)  # a posting without a title has no title line
            docs.append(doc)
        return docs

    def record(posting: Posting, doc: Any) -> Extraction:
        data = dict(doc.user_data["jobfit"])
        _apply_hints(data, posting.meta.get("hints") or {}, facts)
        end = _title_end(posting)
        for sig in data["signals"]:
            sig["in_title"] = sig["start"] < end
        return Extraction(posting.posting_id, posting.content_hash, tax_version, EXTRACTOR_VERSION, data)

    def run(batch: list[Posting]) -> Iterator[tuple[Posting, Extraction | ExtractError]]:
        try:
            done = list(zip(batch, nlp.pipe(docs_of(batch), batch_size=batch_size)))
        except Exception:  # find the posting that broke the batch; keep the others
            for posting in batch:
                try:
                    doc = nlp(docs_of([posting])[0])
                except Exception as exc:  # noqa: BLE001 - reported with its reason, never fatal
                    yield posting, ExtractError(posting.posting_id, posting.source, f"extraction failed: {exc.__class__.__name__}: {str(exc)[:200]}")
                    continue
                yield posting, record(posting, doc)
            return
        for posting, doc in done:
            yield posting, record(posting, doc)

    for posting in postings:
        buffer.append(posting)
        if len(buffer) >= batch_size:
            yield from run(buffer)
            buffer = []
    if buffer:
        yield from run(buffer)


def _apply_hints(data: dict[str, Any], hints: dict[str, Any], facts: Any) -> None:
    """Structured fields from the source (schema.org JobPosting, scraper columns) win over what
    the text suggests: the employer stated them in a field, not in prose."""
    sal = hints.get("salary")
    if sal and sal.get("period") in ("hour", "week", "month", "year"):
        rec = facts.salary_record(sal.get("min"), sal.get("max"), sal["period"], sal.get("currency") or "USD")
        rec["text"] = "(structured baseSalary)"
        data["salary"] = rec
    if hints.get("work_arrangement"):
        data["work_arrangement"] = hints["work_arrangement"]
    if hints.get("employment_type"):
        data["employment_type"] = hints["employment_type"]
    if hints.get("experience_years_min") is not None and data.get("experience_years_min") is None:
        v = float(hints["experience_years_min"])
        data["experience_years_min"] = int(v) if v.is_integer() else v

