"""The Python API behind every CLI command: files → postings → extractions → roles → fits → reports.

Each step reads what the previous one stored in DuckDB and commits its work in batches inside
transactions, so a run can be killed anywhere and the next run finishes the job: postings already
stored are unchanged (same id, same content hash) and skipped, extractions already committed are
kept, roles are (re)computed for every extraction that has none, and reports are rewritten whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import duckdb

from . import export, store
from .extract import ExtractError, Extraction, extract
from .ingest import DEFAULT_MAX_BYTES, Posting, ReadOptions, Reject, iter_files, read_path
from .match import Fit, classify_roles, credential_links, fit_posting, save_fits
from .nlp import EXTRACTOR_VERSION, load_nlp
from .profile import Profile, load_profile
from .taxonomy import Taxonomy, load_taxonomy, require_valid

Events = Callable[..., None]


def batch_size() -> int:
    """Rows per transaction (``JOBFIT_BATCH``): small enough to lose little on a kill."""
    try:
        return max(1, int(os.environ.get("JOBFIT_BATCH", "500")))
    except ValueError:
        return 500


def _quiet(event: str, **fields: Any) -> None:
    return None


@dataclass
class Context:
    """What every step needs: the database, the taxonomy and (lazily) the spaCy pipeline."""

    con: duckdb.DuckDBPyConnection
    tax: Taxonomy
    cache_dir: Path | None = None
    events: Events = _quiet
    _nlp: Any = None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = load_nlp(self.tax, self.cache_dir)
        return self._nlp


def open_context(db: str, taxonomy_dir: str | Path | None = None, cache_dir: Path | None = None, events: Events = _quiet) -> Context:
    tax = require_valid(load_taxonomy(Path(taxonomy_dir) if taxonomy_dir else None))
    con = store.connect(db)
    if store.meta(con, "taxonomy_version") != tax.version:
        store.load_taxonomy(con, tax)
    # we hold the database's lock: a run still marked running was killed
    con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
    return Context(con, tax, cache_dir, events)


def _in_transaction(ctx: Context, work: Callable[[], Any]) -> Any:
    ctx.con.execute("BEGIN TRANSACTION")
    try:
        out = work()
        ctx.con.execute("COMMIT")
    except BaseException:
        ctx.con.execute("ROLLBACK")
        raise
    return out


@dataclass
class IngestResult:
    run_id: int | None
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "unchanged": 0, "updated": 0, "rejected": 0})
    rejects: list[Reject] = field(default_factory=list)
    posting_ids: list[str] = field(default_factory=list)


def ingest(ctx: Context, paths: Sequence[str], *, run_id: int | None = None, stdin: Any = None,
           max_bytes: int | None = None, mapping: dict[str, str] | None = None, full: bool = False,
           processes: int = 1) -> IngestResult:
    """Read files into the postings table in transactional batches; rejects are stored with reasons.

    A file whose path, size, modification time and reading options match the fingerprint stored
    when it was last read completely is not read again (its postings count as unchanged and its
    rejects are reported again); ``full`` reads everything. The fingerprint is committed in the
    same transaction as the file's last postings, so a killed run re-reads a half-read file.
    With ``processes`` > 1 the records of a large JSON Lines file are parsed on that many worker
    processes (storing stays here); the postings and rejects are the same.
    """
    result = IngestResult(run_id)
    batch: list[Posting] = []
    opts = ReadOptions(max_bytes or DEFAULT_MAX_BYTES, dict(mapping or {}), stdin, max(1, processes))
    signature = json.dumps([opts.max_bytes, sorted(opts.mapping.items())])
    size = batch_size()
    done_files: list[dict[str, Any]] = []

    seen_ids: dict[str, tuple[str, str]] = {}

    def flush() -> None:
        def work() -> dict[str, int]:
            counts = store.save_postings(ctx.con, batch, run_id)
            store.save_file_fingerprints(ctx.con, done_files)
            if run_id is not None:  # a killed run still shows what it did
                store.update_run_counts(ctx.con, run_id, {k: result.counts[k] + counts.get(k, 0) for k in ("new", "updated", "unchanged")})
            return counts

        counts = _in_transaction(ctx, work)
        for k, v in counts.items():
            result.counts[k] += v
        result.posting_ids.extend(p.posting_id for p in batch)
        batch.clear()
        done_files.clear()
        ctx.events("ingest_batch", read=len(result.posting_ids), **{k: result.counts[k] for k in ("new", "updated", "unchanged")})

    def reject(item: Reject) -> None:
        result.rejects.append(item)
        ctx.events("reject", source=item.source, record=item.record, reason=item.reason)

    for path in iter_files(paths):
        fp = store.file_fingerprint(path, signature) if path != "-" else None
        if fp is not None and not full:
            seen = store.known_file(ctx.con, fp)
            if seen is not None:  # unchanged since it was last read whole
                n_postings, old_rejects = seen
                result.counts["unchanged"] += n_postings
                for r in old_rejects:
                    reject(Reject(r["source"], r["record"], r["reason"]))
                continue
        n_postings, file_rejects = 0, []
        for item in read_path(path, opts):
            if isinstance(item, Reject):
                reject(item)
                file_rejects.append({"source": item.source, "record": item.record, "reason": item.reason})
                continue
            other = seen_ids.get(item.posting_id)
            if other is not None:
                if other[0] != item.content_hash:  # two different postings claim one id: keep the first, say so
                    bad = Reject(item.source, None, f"duplicate id {item.posting_id!r}: {other[1]} has it with other text; "
                                                    "the first is kept (give records unique ids, or --map id=COLUMN)")
                    reject(bad)
                    file_rejects.append({"source": bad.source, "record": None, "reason": bad.reason})
                continue
            seen_ids[item.posting_id] = (item.content_hash, item.source)
            batch.append(item)
            n_postings += 1
            if len(batch) >= size:
                flush()
        if fp is not None:
            done_files.append({**fp, "n_postings": n_postings, "rejects": file_rejects})
    if batch or done_files:
        flush()
    result.counts["rejected"] = len(result.rejects)
    store.save_rejects(ctx.con, result.rejects, run_id)
    return result


# Extractions classified per role query: one query over a whole large first run held all of its rows
# at once (extract of 30,000 postings on one process peaked at 596 MB that way, 530 MB in chunks).
# ROLE_SQL works per posting (its window functions partition by posting_id), so chunks give the same
# rows (tested); a run killed between chunks leaves the rest unclassified, and the next run does them.
ROLE_CHUNK = 5000


def _save_extractions(ctx: Context, batch: list[Extraction], run_id: int | None, done: int) -> int:
    n = store.save_extractions(ctx.con, batch, run_id)
    if run_id is not None:
        store.update_run_counts(ctx.con, run_id, {"extracted": done + n})
    return n


def extract_pending(ctx: Context, *, run_id: int | None = None, full: bool = False, failures: list[Reject] | None = None,
                    processes: int = 1) -> int:
    """Extract every posting not yet extracted with this taxonomy and extractor version, then
    classify every extraction that has no role yet (this run's, or a killed run's). A posting the
    pipeline fails on is recorded as a reject and stays pending. With ``processes`` > 1 the spaCy
    work is spread over worker processes (see :mod:`pipeline.parallel`); the stored result is the same."""
    total = store.count_pending(ctx.con, ctx.tax.version, EXTRACTOR_VERSION, full=full)
    pending = store.iter_pending(ctx.con, ctx.tax.version, EXTRACTOR_VERSION, full=full)
    ctx.events("extract_start", pending=total, processes=processes)
    done = 0
    batch = []
    size = batch_size()
    failed: list[Reject] = []
    if processes > 1 and total > 64:
        from .parallel import extract_parallel

        results = extract_parallel(pending, ctx.tax, processes, ctx.cache_dir)
    else:
        results = extract(pending, ctx.nlp)
    for _, ex in results:
        if isinstance(ex, ExtractError):
            failed.append(Reject(ex.source, None, ex.reason))
            ctx.events("reject", source=ex.source, record=None, reason=ex.reason)
            continue
        batch.append(ex)
        if len(batch) >= size:
            done += _in_transaction(ctx, lambda: _save_extractions(ctx, batch, run_id, done))
            batch = []
            ctx.events("extract_batch", extracted=done, pending=total)
    if batch:
        done += _in_transaction(ctx, lambda: _save_extractions(ctx, batch, run_id, done))
        ctx.events("extract_batch", extracted=done, pending=total)
    unroled = [r[0] for r in ctx.con.execute(
        "SELECT posting_id FROM extractions LEFT JOIN posting_roles USING (posting_id) WHERE posting_roles.posting_id IS NULL"
    ).fetchall()]
    for i in range(0, len(unroled), ROLE_CHUNK):  # a chunk at a time: bounded memory per query
        part = unroled[i : i + ROLE_CHUNK]
        _in_transaction(ctx, lambda: classify_roles(ctx.con, part))
    if unroled:
        ctx.events("roles", classified=len(unroled))
    if failed:
        store.save_rejects(ctx.con, failed, run_id)
        if failures is not None:
            failures.extend(failed)
    return done


def quick_extract(postings: Iterable[Posting], tax: Taxonomy, cache_dir: Path | None = None,
                  failures: list[Reject] | None = None) -> list[dict[str, Any]]:
    """Extract and classify without touching the user's database (an in-memory DuckDB).
    Postings the pipeline fails on are appended to ``failures`` (when given) and left out."""
    con, recs = _quick(postings, tax, cache_dir, failures)
    con.close()
    return recs


def _quick(postings: Iterable[Posting], tax: Taxonomy, cache_dir: Path | None,
           failures: list[Reject] | None) -> tuple[duckdb.DuckDBPyConnection, list[dict[str, Any]]]:
    ctx = Context(store.connect(":memory:"), tax, cache_dir)
    store.load_taxonomy(ctx.con, tax)
    plist = list(postings)
    seen: dict[str, int] = {}
    for p in plist:  # ids made unique within this look, order kept
        n = seen.get(p.posting_id, 0)
        seen[p.posting_id] = n + 1
        if n:
            p.posting_id = f"{p.posting_id}~{n}"
    store.save_postings(ctx.con, plist, None)
    exs = []
    for _, ex in extract(plist, ctx.nlp):
        if isinstance(ex, ExtractError):
            if failures is not None:
                failures.append(Reject(ex.source, None, ex.reason))
        else:
            exs.append(ex)
    store.save_extractions(ctx.con, exs, None)
    classify_roles(ctx.con, [e.posting_id for e in exs])
    by_id = {r["posting_id"]: r for r in export.records(ctx.con)}
    return ctx.con, [by_id[p.posting_id] for p in plist if p.posting_id in by_id]


def match(ctx: Context, profile_path: str | None = None) -> tuple[int, list[Fit], Profile | None]:
    """Classify every extracted posting; with a profile, score the fit of each posting."""
    n = _in_transaction(ctx, lambda: classify_roles(ctx.con))
    if not profile_path:
        return n, [], None
    profile = load_profile(profile_path, ctx.tax)
    links = credential_links(ctx.con)
    fits = [fit_posting(profile, rec, links) for rec in export.records(ctx.con)]

    def save() -> None:
        ctx.con.execute("INSERT OR REPLACE INTO profiles VALUES (?,?,?,?)",
                        [profile.profile_id, profile.name, profile.path, json.dumps(profile.to_json(), sort_keys=True)])
        save_fits(ctx.con, fits)

    _in_transaction(ctx, save)
    ctx.events("match", postings=n, profile=profile.profile_id)
    return n, fits, profile


def score(postings: Iterable[Posting], profile_path: str, tax: Taxonomy,
          failures: list[Reject] | None = None) -> tuple[Profile, list[tuple[dict[str, Any], Fit]]]:
    """One or more postings against one profile, nothing stored (``jobfit score``)."""
    profile = load_profile(profile_path, tax)  # a bad profile fails before any extraction work
    con, recs = _quick(postings, tax, None, failures)
    try:
        links = credential_links(con)
    finally:
        con.close()
    return profile, [(rec, fit_posting(profile, rec, links)) for rec in recs]

