"""The Python API behind every CLI command: files → postings → extractions → roles → fits → reports.

Each step reads what the previous one stored in DuckDB, so any step can be re-run alone and a
run can stop anywhere and be picked up again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import duckdb

from . import export, store
from .extract import extract
from .ingest import Posting, Reject, read_postings
from .match import classify_roles, credential_links, fit_posting, save_fits, Fit
from .nlp import EXTRACTOR_VERSION, load_nlp
from .profile import Profile, load_profile
from .taxonomy import Taxonomy, load_taxonomy, require_valid

BATCH = 500


@dataclass
class Context:
    """What every step needs: the database, the taxonomy and (lazily) the spaCy pipeline."""

    con: duckdb.DuckDBPyConnection
    tax: Taxonomy
    cache_dir: Path | None = None
    _nlp: Any = None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = load_nlp(self.tax, self.cache_dir)
        return self._nlp


def open_context(db: str, taxonomy_dir: str | Path | None = None, cache_dir: Path | None = None) -> Context:
    tax = require_valid(load_taxonomy(Path(taxonomy_dir) if taxonomy_dir else None))
    con = store.connect(db)
    if store.meta(con, "taxonomy_version") != tax.version:
        store.load_taxonomy(con, tax)
    return Context(con, tax, cache_dir)


@dataclass
class IngestResult:
    run_id: int | None
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "unchanged": 0, "updated": 0, "rejected": 0})
    rejects: list[Reject] = field(default_factory=list)
    posting_ids: list[str] = field(default_factory=list)


def ingest(ctx: Context, paths: Sequence[str], *, run_id: int | None = None, stdin: Any = None, max_bytes: int | None = None) -> IngestResult:
    """Read files into the postings table in transactional batches; rejects are stored with reasons."""
    result = IngestResult(run_id)
    batch: list[Posting] = []
    kwargs = {"stdin": stdin}
    if max_bytes:
        kwargs["max_bytes"] = max_bytes

    def flush() -> None:
        counts = _in_transaction(ctx, lambda: store.save_postings(ctx.con, batch, run_id))
        for k, v in counts.items():
            result.counts[k] += v
        result.posting_ids.extend(p.posting_id for p in batch)
        batch.clear()

    for item in read_postings(paths, **kwargs):
        if isinstance(item, Reject):
            result.rejects.append(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    result.counts["rejected"] = len(result.rejects)
    store.save_rejects(ctx.con, result.rejects, run_id)
    return result


def extract_pending(ctx: Context, *, run_id: int | None = None, full: bool = False, progress: Callable[[int], None] | None = None) -> int:
    """Extract every posting not yet extracted with this taxonomy and extractor version."""
    pending = store.pending_postings(ctx.con, ctx.tax.version, EXTRACTOR_VERSION, full=full)
    done = 0
    batch = []
    for _, ex in extract(pending, ctx.nlp):
        batch.append(ex)
        if len(batch) >= BATCH:
            done += _save_batch(ctx, batch, run_id)
            if progress:
                progress(done)
            batch = []
    if batch:
        done += _save_batch(ctx, batch, run_id)
        if progress:
            progress(done)
    # roles for every extraction that has none yet (this run's, or a killed run's)
    unroled = [r[0] for r in ctx.con.execute(
        "SELECT posting_id FROM extractions LEFT JOIN posting_roles USING (posting_id) WHERE posting_roles.posting_id IS NULL"
    ).fetchall()]
    if unroled:
        _in_transaction(ctx, lambda: classify_roles(ctx.con, unroled))
    return done


def _in_transaction(ctx: Context, work: Callable[[], Any]) -> Any:
    ctx.con.execute("BEGIN TRANSACTION")
    try:
        out = work()
        ctx.con.execute("COMMIT")
    except BaseException:
        ctx.con.execute("ROLLBACK")
        raise
    return out


def _save_batch(ctx: Context, batch: list, run_id: int | None) -> int:
    return _in_transaction(ctx, lambda: store.save_extractions(ctx.con, batch, run_id))


def quick_extract(postings: Iterable[Posting], tax: Taxonomy, cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Extract and classify without touching the user's database (an in-memory DuckDB)."""
    ctx = Context(store.connect(":memory:"), tax, cache_dir)
    store.load_taxonomy(ctx.con, tax)
    plist = list(postings)
    # keep the order the files were given in; ids made unique within this look
    seen: dict[str, int] = {}
    for p in plist:
        n = seen.get(p.posting_id, 0)
        seen[p.posting_id] = n + 1
        if n:
            p.posting_id = f"{p.posting_id}~{n}"
    store.save_postings(ctx.con, plist, None)
    exs = [ex for _, ex in extract(plist, ctx.nlp)]
    store.save_extractions(ctx.con, exs, None)
    classify_roles(ctx.con, [e.posting_id for e in exs])
    by_id = {r["posting_id"]: r for r in export.records(ctx.con)}
    return [by_id[p.posting_id] for p in plist if p.posting_id in by_id]


def match(ctx: Context, profile_path: str | None = None) -> tuple[int, list[Fit], Profile | None]:
    """Classify every extracted posting; with a profile, score the fit of each posting."""
    n = classify_roles(ctx.con)
    if not profile_path:
        return n, [], None
    profile = load_profile(profile_path, ctx.tax)
    links = credential_links(ctx.con)
    fits = [fit_posting(profile, rec, links) for rec in export.records(ctx.con)]
    ctx.con.execute("INSERT OR REPLACE INTO profiles VALUES (?,?,?,?)", [profile.profile_id, profile.name, profile.path, __import__("json").dumps(profile.to_json())])
    save_fits(ctx.con, fits)
    return n, fits, profile
