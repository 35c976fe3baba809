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
from .fit import Fit, FitRun, kept_fits, score_all
from .match import classify_roles
from .nlp import EXTRACTOR_VERSION, load_nlp
from .profile import Profile, ProfileError, load_profile, profile_files
from .resume import Draft
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
    """Run ``work`` in one transaction; after a DuckDB out-of-memory error it is rolled back and
    run again with a larger memory cap (see :func:`store.more_memory`)."""
    def once() -> Any:
        ctx.con.execute("BEGIN TRANSACTION")
        try:
            out = work()
            ctx.con.execute("COMMIT")
        except BaseException:
            ctx.con.execute("ROLLBACK")
            raise
        return out

    return store.with_memory(ctx.con, once, lambda new: ctx.events("duckdb_memory", limit_mb=new >> 20))


@dataclass
class IngestResult:
    run_id: int | None
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "unchanged": 0, "updated": 0, "rejected": 0})
    rejects: list[Reject] = field(default_factory=list)
    posting_ids: list[str] = field(default_factory=list)


Reader = Callable[[str, ReadOptions], Iterable[Posting | Reject]]
Extractor = Callable[[Iterable[Posting]], Iterable[tuple[Posting | None, Extraction | ExtractError]]]


def read_options(max_bytes: int | None = None, mapping: dict[str, str] | None = None, stdin: Any = None) -> ReadOptions:
    return ReadOptions(max_bytes or DEFAULT_MAX_BYTES, dict(mapping or {}), stdin)


def read_signature(opts: ReadOptions) -> str:
    """The reading options a file fingerprint includes: other options, other postings."""
    return json.dumps([opts.max_bytes, sorted(opts.mapping.items())])


def ingest(ctx: Context, paths: Sequence[str], *, run_id: int | None = None, stdin: Any = None,
           max_bytes: int | None = None, mapping: dict[str, str] | None = None, full: bool = False,
           reader: Reader | None = None, processes: int = 1) -> IngestResult:
    """Read files into the postings table in transactional batches; rejects are stored with reasons.

    A file whose path, size, modification time and reading options match the fingerprint stored
    when it was last read completely is not read again (its postings count as unchanged and its
    rejects are reported again); ``full`` reads everything. The fingerprint is committed in the
    same transaction as the file's last postings, so a killed run re-reads a half-read file.
    ``reader`` replaces :func:`read_path` (the Dask engine reads on a cluster); what is stored,
    and in which order, is decided here either way. With ``processes`` > 1 the records of a large
    JSON Lines file are parsed on that many worker processes (storing stays here); the postings and
    rejects are the same.
    """
    result = IngestResult(run_id)
    batch: list[Posting] = []
    opts = read_options(max_bytes, mapping, stdin)
    opts.processes = max(1, processes)
    signature = read_signature(opts)
    read = reader or read_path
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
        for item in read(path, opts):
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
                    processes: int = 1, extractor: Extractor | None = None) -> int:
    """Extract every posting not yet extracted with this taxonomy and extractor version, then
    classify every extraction that has no role yet (this run's, or a killed run's). A posting the
    pipeline fails on is recorded as a reject and stays pending. With ``processes`` > 1 the spaCy
    work is spread over worker processes (see :mod:`pipeline.parallel`); with ``extractor`` (the
    Dask engine) that function does it. The stored result is the same."""
    total = store.count_pending(ctx.con, ctx.tax.version, EXTRACTOR_VERSION, full=full)
    pending = store.iter_pending(ctx.con, ctx.tax.version, EXTRACTOR_VERSION, full=full)
    ctx.events("extract_start", pending=total, processes=processes)
    done = 0
    batch = []
    size = batch_size()
    failed: list[Reject] = []
    if extractor is not None:
        results = extractor(pending) if total else iter(())
    elif processes > 1 and total > 64:
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
    unroled = _unroled(ctx)
    _classify(ctx, unroled)
    if unroled:
        ctx.events("roles", classified=len(unroled))
    if failed:
        store.save_rejects(ctx.con, failed, run_id)
        if failures is not None:
            failures.extend(failed)
    return done


def _classify(ctx: Context, ids: Sequence[str]) -> int:
    """Classify postings ROLE_CHUNK at a time, each chunk in its own transaction: one query over
    100,000 postings held all their rows and evidence at once (the match stage peaked at 791 MB);
    a run killed between chunks leaves the rest unroled, and the next run classifies them."""
    n = 0
    for i in range(0, len(ids), ROLE_CHUNK):
        part = ids[i : i + ROLE_CHUNK]
        n += _in_transaction(ctx, lambda: classify_roles(ctx.con, part))
    return n


def _unroled(ctx: Context) -> list[str]:
    return [r[0] for r in ctx.con.execute(
        "SELECT posting_id FROM extractions LEFT JOIN posting_roles USING (posting_id) WHERE posting_roles.posting_id IS NULL"
    ).fetchall()]


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


@dataclass
class MatchResult:
    n_postings: int
    profiles: list[Profile] = field(default_factory=list)
    fit: FitRun | None = None


def read_profiles(tax: Taxonomy, profile_paths: Sequence[str | Path] | str | None = (),
                  profiles_dir: str | Path | None = None) -> list[Profile]:
    """Every profile named, read and checked before anything is written. A file named twice is
    read once; two different files with one profile id, and every unreadable profile, are
    reported together in one :class:`ProfileError`."""
    if isinstance(profile_paths, (str, Path)):
        profile_paths = [profile_paths]
    paths = [Path(p) for p in profile_paths or ()]
    if profiles_dir is not None:
        paths += profile_files(profiles_dir)
    seen: dict[Path, None] = {}
    for p in paths:
        seen.setdefault(p.resolve(), None)
    profiles, errors, ids = [], [], {}
    for path in seen:
        try:
            prof = load_profile(path, tax)
        except ProfileError as exc:
            errors.append(str(exc))
            continue
        if prof.profile_id in ids:
            errors.append(f"{path}: has the same profile id {prof.profile_id!r} as {ids[prof.profile_id]}; rename one of them")
            continue
        ids[prof.profile_id] = path
        profiles.append(prof)
    if errors:
        raise ProfileError("\n".join(errors) if len(errors) == 1 else f"{len(errors)} profiles cannot be used:\n  " + "\n  ".join(errors))
    return profiles


def match(ctx: Context, profile_paths: Sequence[str | Path] | str | None = (), *, profiles_dir: str | Path | None = None,
          top: int | None = None, top_per_posting: int | None = None, reclassify: bool = False,
          profiles: Sequence[Profile] | None = None) -> MatchResult:
    """Classify extracted postings that have no role yet (every one with ``reclassify``); score
    each profile against every posting in SQL.

    Profiles come from files and/or every profile file in ``profiles_dir`` (or ready-read
    ``profiles``). All pairs are kept unless ``top`` / ``top_per_posting`` say how many to keep per
    profile / per posting. Every profile is read before anything is written, so one bad profile
    changes nothing. With ``profiles_dir``, stored profiles that came from that folder and whose
    file is gone are dropped with their matches: the folder is the candidate pool.
    """
    ids = [r[0] for r in ctx.con.execute("SELECT posting_id FROM extractions ORDER BY posting_id").fetchall()] if reclassify else _unroled(ctx)
    n = _classify(ctx, ids)
    if profiles is None:
        profiles = read_profiles(ctx.tax, profile_paths, profiles_dir)
    profiles = list(profiles)
    if not profiles:
        return MatchResult(n)

    def save() -> FitRun:
        if profiles_dir is not None:
            folder = str(Path(profiles_dir).resolve())
            keep = [p.profile_id for p in profiles]
            gone = [pid for pid, path in ctx.con.execute(
                "SELECT profile_id, path FROM profiles WHERE NOT list_contains(?, profile_id)", [keep]).fetchall()
                if str(Path(path).resolve().parent) == folder]
            if gone:
                ctx.con.execute("DELETE FROM matches WHERE list_contains(?, profile_id)", [gone])
                ctx.con.execute("DELETE FROM profiles WHERE list_contains(?, profile_id)", [gone])
        ctx.con.executemany("INSERT OR REPLACE INTO profiles VALUES (?,?,?,?)",
                            [[p.profile_id, p.name, str(Path(p.path).resolve()), json.dumps(p.to_json(), sort_keys=True)] for p in profiles])
        return score_all(ctx.con, profiles, ctx.tax, top=top, top_per_posting=top_per_posting)

    run = _in_transaction(ctx, save)
    ctx.events("match", postings=n, profiles=len(profiles), kept=run.n_kept)
    return MatchResult(n, profiles, run)


def score(postings: Iterable[Posting], profile_path: str, tax: Taxonomy,
          failures: list[Reject] | None = None) -> tuple[Profile, list[tuple[dict[str, Any], Fit]]]:
    """One or more postings against one profile, nothing stored (``jobfit score``): the same SQL
    as a batch match, over an in-memory database."""
    profile = load_profile(profile_path, tax)  # a bad profile fails before any extraction work
    con, recs = _quick(postings, tax, None, failures)
    try:
        score_all(con, [profile], tax, posting_ids=[r["posting_id"] for r in recs], store=False)
        fits = {f.posting_id: f for f in kept_fits(con, tax)}
    finally:
        con.close()
    return profile, [(rec, fits[rec["posting_id"]]) for rec in recs]


def draft_profile(resume_path: str | Path, tax: Taxonomy, cache_dir: Path | None = None) -> Draft:
    """A draft profile from a résumé document, read by the posting extractor (nothing stored)."""
    from datetime import date

    from .ingest import normalize_text
    from .resume import draft_from_text, resume_text

    text = normalize_text(resume_text(resume_path))
    posting = Posting(f"resume:{Path(resume_path).name}", str(resume_path), None, text, "resume")
    recs = quick_extract([posting], tax, cache_dir)
    return draft_from_text(text, recs[0] if recs else {}, tax, date.today())
