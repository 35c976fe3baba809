"""Extraction on several processes, returning compact records rather than spaCy Docs.

``nlp.pipe(n_process=2)`` pickles every Doc back to the parent, which on this kind of machine made
two processes slower than one. Here each worker loads the saved pipeline once (from the cache, keyed
by taxonomy version), receives chunks of postings as plain tuples and sends back the extraction
records as plain dicts; only a bounded number of chunks is in flight, so memory stays flat.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

from .extract import ExtractError, Extraction, extract
from .ingest import Posting
from .taxonomy import Taxonomy

CHUNK = 64

_worker_nlp: Any = None


def _init_worker(taxonomy_root: str, cache_dir: str | None) -> None:
    global _worker_nlp
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:  # Linux: die with the parent (a SIGKILLed run must not leave workers writing to its log)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    from .nlp import load_nlp
    from .taxonomy import load_taxonomy

    _worker_nlp = load_nlp(load_taxonomy(Path(taxonomy_root)), Path(cache_dir) if cache_dir else None)


def _work(rows: list[tuple]) -> list[tuple[str, str, Any]]:
    postings = [Posting(*row) for row in rows]
    out = []
    for posting, ex in extract(postings, _worker_nlp):
        if isinstance(ex, ExtractError):
            out.append(("error", posting.posting_id, (ex.source, ex.reason)))
        else:
            out.append(("ok", posting.posting_id, (ex.content_hash, ex.taxonomy_version, ex.extractor_version, ex.data)))
    return out


def _rows(p: Posting) -> tuple:
    return (p.posting_id, p.source, p.title, p.text, p.format, p.meta, p.encoding)


def extract_parallel(postings: Iterable[Posting], tax: Taxonomy, processes: int,
                     cache_dir: Path | None = None) -> Iterator[tuple[Posting | None, Extraction | ExtractError]]:
    """Same records as :func:`pipeline.extract.extract`, in the same order, from ``processes`` workers."""
    from .nlp import ensure_saved

    ensure_saved(tax, cache_dir)  # build and save the pipeline once, before the workers load it
    ctx = mp.get_context("spawn")  # no fork of a process that holds a DuckDB connection and its threads
    with ctx.Pool(processes, initializer=_init_worker, initargs=(str(tax.root), str(cache_dir) if cache_dir else None)) as pool:
        inflight: deque = deque()

        def drain_one() -> Iterator[tuple[None, Extraction | ExtractError]]:
            for kind, pid, payload in inflight.popleft().get():
                if kind == "ok":
                    yield None, Extraction(pid, *payload)
                else:
                    yield None, ExtractError(pid, *payload)

        chunk: list[tuple] = []
        for p in postings:
            chunk.append(_rows(p))
            if len(chunk) >= CHUNK:
                inflight.append(pool.apply_async(_work, (chunk,)))
                chunk = []
                if len(inflight) >= 3 * processes:
                    yield from drain_one()
        if chunk:
            inflight.append(pool.apply_async(_work, (chunk,)))
        while inflight:
            yield from drain_one()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
