"""The ``jobfit`` command: a thin Click layer over :mod:`pipeline.runner` and friends.

Exit codes: 0 all good; 1 failed (bad taxonomy, unreadable profile...); 2 usage error;
3 finished, but some inputs were rejected (listed, stored in the rejects table);
4 the database is locked by another jobfit process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Iterable

import click
import duckdb

from . import export, report as report_mod, store
from .ingest import IngestError, read_postings, Reject
from .profile import ProfileError
from .resume import ResumeError
from .taxonomy import TaxonomyError, load_taxonomy, require_valid

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_REJECTS, EXIT_LOCKED = 0, 1, 2, 3, 4


_LOG_JSON = {"on": False}


def _fail(msg: str, code: int = EXIT_FAIL) -> None:
    if _LOG_JSON["on"]:  # the nightly log stays JSON Lines whatever happens
        click.echo(json.dumps({"event": "error", "exit": code, "message": msg}, ensure_ascii=False), err=True)
    else:
        click.echo(f"jobfit: error: {msg}", err=True)
    sys.exit(code)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Known user mistakes become one clear line and an exit code, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except store.StoreError as exc:
            _fail(str(exc), EXIT_LOCKED if "in use" in str(exc) else EXIT_FAIL)
        except IngestError as exc:
            _fail(str(exc), EXIT_USAGE)
        except (TaxonomyError, ProfileError, ResumeError) as exc:
            _fail(str(exc))
        except duckdb.OutOfMemoryException as exc:  # already retried with the cap raised to 80 % of RAM
            _fail(f"DuckDB ran out of memory: {str(exc).splitlines()[0]} (nothing half-written: the last batch was "
                  "rolled back; free memory, or raise JOBFIT_DUCKDB_MEMORY, and run again)")
        except Exception as exc:
            from .evaluate import GoldError

            if isinstance(exc, GoldError):
                _fail(str(exc))
            raise

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="JOBFIT_DB", default="jobfit.duckdb", show_default=True, help="DuckDB file (env JOBFIT_DB).")
@click.option("--taxonomy", "taxonomy_dir", envvar="JOBFIT_TAXONOMY", default=None, help="Taxonomy folder (default: skill_taxonomy/ of this checkout).")
@click.option("--hcpcs", envvar="JOBFIT_HCPCS", default=None, type=click.Path(dir_okay=False), help="CMS HCPCS Level II CSV for code validity (env JOBFIT_HCPCS).")
@click.version_option(package_name="jobfit")
@click.pass_context
def cli(ctx: click.Context, db: str, taxonomy_dir: str | None, hcpcs: str | None) -> None:
    """jobfit: read medical billing & coding job postings, extract what they ask for,
    classify the role and score the fit.

    \b
    Example:
      jobfit run sample_postings/ --profile sample_profiles/experienced_cpc_coder.yaml
    """
    if hcpcs:
        os.environ["JOBFIT_HCPCS"] = hcpcs
    ctx.obj = {"db": db, "taxonomy": taxonomy_dir}


def _context(ctx: click.Context, log_json: bool = False):
    from .runner import open_context

    c = open_context(ctx.obj["db"], ctx.obj["taxonomy"], events=_events(log_json))
    ctx.call_on_close(c.con.close)  # release the file lock as soon as the command ends
    return c


# --- taxonomy ------------------------------------------------------------------------------


@cli.group()
def taxonomy() -> None:
    """Load, check and show the role taxonomy in skill_taxonomy/."""


@taxonomy.command("validate")
@click.pass_context
@friendly
def taxonomy_validate(ctx: click.Context) -> None:
    """Check the taxonomy files: duplicate aliases, unknown ids, missing sources.

    \b
    Example:
      jobfit taxonomy validate
    """
    tax = load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None)
    if tax.problems:
        for p in tax.problems:
            click.echo(str(p))
        click.echo(f"{len(tax.problems)} problem(s) in {tax.root}", err=True)
        sys.exit(EXIT_FAIL)
    counts = {k: len(v) for k, v in tax.terms.items()}
    click.echo(f"ok: {len(tax.roles)} roles, {counts['credential']} credentials, {counts['code_system']} code systems, "
               f"{counts['skill']} skills, {counts['education']} education levels (version {tax.version})")


@taxonomy.command("load")
@click.pass_context
@friendly
def taxonomy_load(ctx: click.Context) -> None:
    """Load the taxonomy into the database (done automatically when it changes).

    \b
    Example:
      jobfit --db jobs.duckdb taxonomy load
    """
    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    con = store.connect(ctx.obj["db"])
    ctx.call_on_close(con.close)
    counts = store.load_taxonomy(con, tax)
    names = {"roles": "roles", "credential": "credentials", "code_system": "code systems", "skill": "skills", "education": "education levels"}
    click.echo(f"loaded taxonomy {tax.version} into {ctx.obj['db']}: " + ", ".join(f"{v} {names.get(k, k)}" for k, v in counts.items()))


@taxonomy.command("show")
@click.argument("role", required=False)
@click.pass_context
@friendly
def taxonomy_show(ctx: click.Context, role: str | None) -> None:
    """List the roles, or show one role's titles, credentials, code systems, skills, pay and outlook.

    \b
    Examples:
      jobfit taxonomy show
      jobfit taxonomy show hospital_coder
    """
    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    if not role:
        for r in tax.roles.values():
            click.echo(f"{r.id:<32} {r.name}")
        return
    r = tax.roles.get(role)
    if r is None:
        _fail(f"unknown role {role!r}; known: {', '.join(tax.roles)}", EXIT_USAGE)
    click.echo(f"{r.name} ({r.id})\n{r.description}\n")
    click.echo("Titles: " + ", ".join(r.title_aliases))
    for kind in ("credential", "code_system", "skill"):
        items = sorted((i for i in r.items if i.kind == kind), key=lambda i: (-i.weight, i.id))
        if items:
            click.echo(f"{kind.replace('_', ' ').title()}s: " + ", ".join(f"{i.id} ({i.level}, {i.weight:g})" for i in items))
    if r.education:
        click.echo(f"Education: {r.education}")
    if r.experience:
        click.echo(f"Experience: {r.experience}")
    for p in r.pay:
        click.echo(f"Pay: {p}")
    for o in r.outlook:
        click.echo(f"Outlook: {o}")
    click.echo(f"Source: {r.source}")


# --- pipeline steps ----------------------------------------------------------------------


def _print_rejects(rejects: list[Reject], log_json: bool = False) -> None:
    if log_json:
        return  # already emitted as "reject" events
    for r in rejects:
        where = f"{r.source}" if r.record is None or r.source.endswith(f"#{r.record}") else f"{r.source} record {r.record}"
        click.echo(f"rejected: {where}: {r.reason}", err=True)


def _procs(n: int) -> int:
    if n == 0:
        from .parallel import cpu_count

        return cpu_count()
    return n


def _check_out(out: str) -> None:
    """The report folder can be created and written, checked before any work is done."""
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        probe = Path(out) / ".jobfit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        _fail(f"{out}: cannot write reports there: {exc.strerror or exc}", EXIT_USAGE)


def _check_paths(paths: tuple[str, ...]) -> None:
    """Every input path exists, checked before the database is opened or a run is recorded."""
    missing = [p for p in paths if p != "-" and not Path(p).exists()]
    if missing:
        _fail(f"{missing[0]}: no such file or directory" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""), EXIT_USAGE)


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, col = pair.partition("=")
        if not sep or key not in ("text", "title", "id", "company", "location", "date_posted", "url") or not col:
            _fail(f"--map takes FIELD=COLUMN with FIELD one of text, title, id, company, location, date_posted, url; got {pair!r}", EXIT_USAGE)
        out[key] = col
    return out


def _events(log_json: bool) -> Callable[..., None]:
    """JSON log lines with --log-json; a progress bar on a terminal; no progress output otherwise."""
    if log_json:
        from datetime import datetime, timezone

        def emit(event: str, **fields: Any) -> None:
            stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            click.echo(json.dumps({"ts": stamp, "event": event, **fields}, ensure_ascii=False), err=True)

        return emit
    if sys.stderr.isatty():
        def bar(event: str, **fields: Any) -> None:
            if event == "ingest_batch":
                click.echo(f"\ringesting: {fields['read']} read", err=True, nl=False)
            elif event == "extract_start":
                click.echo("", err=True)
            elif event == "extract_batch" and fields.get("pending"):
                done, total = fields["extracted"], fields["pending"]
                filled = int(30 * done / total)
                click.echo(f"\rextracting [{'#' * filled}{' ' * (30 - filled)}] {done}/{total}", err=True, nl=False)
            elif event == "roles":
                click.echo("", err=True)

        return bar
    return lambda event, **fields: None


PROCESSES = click.option("-j", "--processes", type=click.IntRange(min=0), default=1, show_default=True,
                         help="Worker processes for extraction (0 = one per core).")
LOG_JSON = click.option("--log-json", is_flag=True, help="Emit progress and the summary as JSON lines on stderr (for cron / journald).")
MAX_BYTES = click.option("--max-bytes", type=click.IntRange(min=1), default=None, help="Reject files and records larger than this (default 5 MiB).")
ENGINE = click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                      help="Where extraction runs: this process (and -j workers), or a Dask cluster (pip install \"jobfit[dask]\").")
SCHEDULER = click.option("--scheduler", metavar="ADDRESS", default=None,
                         help="Dask scheduler address (tcp://host:8786) for --engine dask; without it a LocalCluster of -j "
                              "worker processes (default one per core) is started on this machine.")
MAP = click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN", help="Column mapping for CSV/JSON feeds, e.g. --map text=body_html.")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@MAX_BYTES
@MAP
@LOG_JSON
@click.pass_context
@friendly
def ingest(ctx: click.Context, paths: tuple[str, ...], max_bytes: int | None, mapping: tuple[str, ...], log_json: bool) -> None:
    """Read posting files (directories recursively; '-' reads stdin) into the database.

    \b
    Example:
      jobfit ingest sample_postings/
      cat posting.txt | jobfit ingest -
      jobfit ingest export.csv --map text=body_html --map title=job_name
    """
    from .runner import ingest as do_ingest

    _LOG_JSON["on"] = log_json
    mp = _parse_map(mapping)
    _check_paths(paths)
    c = _context(ctx, log_json)
    run_id = store.start_run(c.con, "ingest", c.tax.version, "-")
    res = do_ingest(c, list(paths), run_id=run_id, stdin=sys.stdin.buffer, max_bytes=max_bytes, mapping=mp)
    store.finish_run(c.con, run_id, "ok" if not res.rejects else "rejects", res.counts)
    _print_rejects(res.rejects, log_json)
    click.echo(f"ingested: {res.counts['new']} new, {res.counts['updated']} updated, {res.counts['unchanged']} unchanged, {res.counts['rejected']} rejected")
    if res.rejects:
        sys.exit(EXIT_REJECTS)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table", show_default=True)
@click.option("--full", is_flag=True, help="Re-extract every stored posting.")
@PROCESSES
@click.pass_context
@friendly
def extract(ctx: click.Context, paths: tuple[str, ...], fmt: str, full: bool, processes: int) -> None:
    """Extract requirements. With PATHs: a quick look at those files, nothing stored.
    Without: extract stored postings that are new or changed.

    \b
    Examples:
      jobfit extract sample_postings/txt/medical_coder_phoenix.txt --format json
      jobfit extract
    """
    if paths:
        from .runner import quick_extract

        tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
        items = list(read_postings(paths, stdin=sys.stdin.buffer))
        rejects = [i for i in items if isinstance(i, Reject)]
        recs = quick_extract([i for i in items if not isinstance(i, Reject)], tax, failures=rejects)
        _print_rejects(rejects)
        _emit(recs, fmt)
        if rejects:
            sys.exit(EXIT_REJECTS)
        return
    from .runner import extract_pending

    c = _context(ctx)
    failed: list[Reject] = []
    n = extract_pending(c, full=full, failures=failed, processes=_procs(processes))
    _print_rejects(failed)
    if fmt == "json":
        _emit(export.records(c.con), fmt)  # streamed: every posting in the store
    else:
        click.echo(f"extracted {n} posting(s)" + (f", {len(failed)} failed" if failed else ""))
    if failed:
        sys.exit(EXIT_REJECTS)


def _emit(recs: Iterable[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        for r in recs:
            click.echo(export.dumps(r))
        return
    for r in recs:
        creds = ", ".join(f"{c['id']}:{c['requirement']}" for c in r["certifications"]) or "-"
        systems = ", ".join(s["id"] for s in r["code_systems"]) or "-"
        sal = r["salary"]
        pay = "-"
        if sal:
            lo = "" if sal["min"] is None else f"{sal['min']:g}"
            hi = "" if sal["max"] is None else f"{sal['max']:g}"
            pay = f"{sal['currency']} {lo if lo == hi else f'{lo}-{hi}'}/{sal['period']}"
        click.echo(f"{r['source']}\n  title: {r['title']}\n  role: {r['role']['id']} ({r['role']['score']})\n  credentials: {creds}\n"
                   f"  code systems: {systems}\n  codes: {', '.join(c['code'] for c in r['codes']) or '-'}\n"
                   f"  years: {r['experience_years_min']}  education: {r['education_min']}  pay: {pay}\n"
                   f"  arrangement: {r['work_arrangement']}  employment: {r['employment_type']}")


PROFILE_OPTS = [
    click.option("--profile", "profiles", multiple=True, type=click.Path(exists=True, dir_okay=False),
                 help="Profile file (YAML, JSON or JSON Resume); repeat for several."),
    click.option("--profiles", "profiles_dir", type=click.Path(exists=True, file_okay=False),
                 help="Folder of profile files: every profile is scored against every posting."),
    click.option("--top", type=click.IntRange(min=1), default=None,
                 help="Keep the N best postings per profile (default: all with --profile, 20 with --profiles)."),
    click.option("--top-per-posting", type=click.IntRange(min=1), default=None,
                 help="Also keep the N best profiles per posting (default: 5 with --profiles)."),
]


def profile_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(PROFILE_OPTS):
        fn = opt(fn)
    return fn


def _keep(profiles_dir: str | None, top: int | None, top_per_posting: int | None) -> tuple[int | None, int | None]:
    """All pairs for a job seeker's own profile(s); top N for a recruiter's folder of profiles."""
    if profiles_dir:
        return top or 20, top_per_posting or 5
    return top, top_per_posting


def _print_match_summary(c: Any, res: Any, limit: int = 3) -> None:
    if not res.profiles:
        return
    for prof in res.profiles[:50]:
        rows = c.con.execute("SELECT band, count(*) FROM matches WHERE profile_id = ? GROUP BY 1 ORDER BY min(score) DESC",
                             [prof.profile_id]).fetchall()
        click.echo(f"fit for {prof.name} ({prof.profile_id}): " + (", ".join(f"{n} {b}" for b, n in rows) or "no extracted postings yet"))
        top = c.con.execute("""SELECT m.score, m.band, coalesce(p.title, p.source) FROM matches m JOIN postings p USING (posting_id)
                               WHERE m.profile_id = ? ORDER BY m.score DESC, m.posting_id LIMIT ?""", [prof.profile_id, limit]).fetchall()
        for score, band, title in top:
            click.echo(f"  {score:5.1f}  {band:<9}  {title}")
    if len(res.profiles) > 50:
        click.echo(f"... and {len(res.profiles) - 50} more profiles (jobfit report --profile-id ID, or the matches table)")
    for prof in res.profiles:
        for w in prof.warnings:
            click.echo(f"profile warning: {w}", err=True)


@cli.command()
@profile_options
@click.option("--reclassify", is_flag=True, help="Classify every posting's role again, not only postings without one.")
@click.pass_context
@friendly
def match(ctx: click.Context, profiles: tuple[str, ...], profiles_dir: str | None, top: int | None, top_per_posting: int | None,
          reclassify: bool) -> None:
    """Classify every posting's role; with profiles, score every profile against every posting.

    \b
    Examples:
      jobfit match --profile sample_profiles/entry_cca.yaml
      jobfit match --profiles sample_profiles/ --top 10 --top-per-posting 3
    """
    from .runner import match as do_match

    top, top_per_posting = _keep(profiles_dir, top, top_per_posting)
    c = _context(ctx)
    res = do_match(c, profiles, profiles_dir=profiles_dir, top=top, top_per_posting=top_per_posting, reclassify=reclassify)
    total = c.con.execute("SELECT count(*) FROM posting_roles").fetchone()[0]
    click.echo(f"{total} posting(s) have a role ({res.n_postings} classified now)")
    if res.fit:
        click.echo(f"scored {res.fit.n_profiles} profile(s) x {res.fit.n_postings} posting(s) = {res.fit.n_pairs} pairs; kept {res.fit.n_kept}")
    _print_match_summary(c, res)


def _formats(formats: str) -> list[str]:
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in report_mod.FORMATS]
    if bad:
        _fail(f"unknown report format(s): {', '.join(bad)}; choose from {', '.join(report_mod.FORMATS)}", EXIT_USAGE)
    return fmts


FORMAT_HELP = "Comma-separated: html, md, csv, json, parquet (every table, in OUT/tables/)."


@cli.command()
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "formats", default="html,md,csv,json", show_default=True, help=FORMAT_HELP)
@click.option("--profile-id", "profile_ids", multiple=True, help="Also write this stored profile's report (repeatable).")
@click.option("--all-profiles", is_flag=True, help="Write a report for every stored profile.")
@click.pass_context
@friendly
def report(ctx: click.Context, out: str, formats: str, profile_ids: tuple[str, ...], all_profiles: bool) -> None:
    """Write the market report and, per profile, a ranked fit report.

    \b
    Example:
      jobfit report --out reports/ --format html,md --profile-id entry_cca
    """
    fmts = _formats(formats)
    c = _context(ctx)
    known = [r[0] for r in c.con.execute("SELECT profile_id FROM profiles ORDER BY 1").fetchall()]
    for pid in profile_ids:
        if pid not in known:
            from rapidfuzz import process

            best = process.extractOne(pid, known, score_cutoff=70) if known else None
            hint = f"; did you mean {best[0]!r}?" if best else ""
            _fail(f"no stored profile {pid!r}{hint} stored: {', '.join(known[:20]) or 'none (run jobfit match --profile FILE first)'}"
                  + (f" and {len(known) - 20} more" if len(known) > 20 else ""), EXIT_USAGE)
    if not c.con.execute("SELECT count(*) FROM extractions").fetchone()[0]:
        click.echo("note: no extracted postings in the database yet (jobfit ingest PATH, then jobfit extract)", err=True)
    try:
        paths_written = store.with_memory(c.con, lambda: report_mod.write_reports(c.con, out, fmts, known if all_profiles else list(profile_ids)))
    except OSError as exc:
        _fail(f"{out}: writing reports failed: {exc.strerror or exc}")
    for path in paths_written:
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@profile_options
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "formats", default="html,md,csv,json", show_default=True, help=FORMAT_HELP)
@click.option("--full", is_flag=True, help="Re-extract every posting, changed or not.")
@PROCESSES
@ENGINE
@SCHEDULER
@MAX_BYTES
@MAP
@LOG_JSON
@click.pass_context
@friendly
def run(ctx: click.Context, paths: tuple[str, ...], profiles: tuple[str, ...], profiles_dir: str | None, top: int | None,
        top_per_posting: int | None, out: str, formats: str, full: bool, processes: int, engine: str, scheduler: str | None,
        max_bytes: int | None, mapping: tuple[str, ...], log_json: bool) -> None:
    """Ingest, extract, match and report in one go. Safe to re-run: only new or changed
    postings are extracted, and a killed run is finished by the next one.

    \b
    Example:
      jobfit run sample_postings/ --profile sample_profiles/cpb_biller.yaml --out reports/
      jobfit --db /var/lib/jobfit/jobs.duckdb run /srv/feeds/ --log-json   # under cron
      jobfit run /srv/feeds/ --engine dask --scheduler tcp://scheduler:8786
    """
    from .nlp import EXTRACTOR_VERSION
    from .runner import extract_pending, ingest as do_ingest, match as do_match

    fmts = _formats(formats)
    top, top_per_posting = _keep(profiles_dir, top, top_per_posting)
    _LOG_JSON["on"] = log_json
    mp = _parse_map(mapping)
    _check_paths(paths)
    _check_out(out)
    eng = _dask_engine(ctx, engine, scheduler, processes)
    t0 = time.perf_counter()
    c = _context(ctx, log_json)
    from .runner import read_profiles

    profs = read_profiles(c.tax, profiles, profiles_dir)  # a bad profile stops the run before it starts
    run_id = store.start_run(c.con, "run", c.tax.version, EXTRACTOR_VERSION)
    c.events("run_start", run_id=run_id, paths=list(paths))
    if eng is not None:
        eng.events = c.events
        eng.track(c.con, run_id)
    res = do_ingest(c, list(paths), run_id=run_id, stdin=sys.stdin.buffer, max_bytes=max_bytes, mapping=mp, full=full,
                    reader=eng.ingest_reader(c, paths, max_bytes=max_bytes, mapping=mp, full=full) if eng else None,
                    processes=1 if eng else _procs(processes))
    _print_rejects(res.rejects, log_json)
    failed: list[Reject] = []
    n = extract_pending(c, run_id=run_id, full=full, failures=failed, processes=_procs(processes),
                        extractor=eng.extractor(c.tax, c.cache_dir) if eng else None)
    _print_rejects(failed, log_json)
    res.rejects += failed
    res.counts["rejected"] += len(failed)
    mres = do_match(c, profiles_dir=profiles_dir, top=top, top_per_posting=top_per_posting, profiles=profs)
    res.counts["extracted"] = n
    c.events("report_start", out=str(out))
    try:
        written = store.with_memory(c.con, lambda: report_mod.write_reports(c.con, out, fmts, [p.profile_id for p in mres.profiles]))
    except OSError as exc:
        store.finish_run(c.con, run_id, "failed", res.counts)
        _fail(f"{out}: writing reports failed: {exc.strerror or exc}")
    status = "ok" if not res.rejects else "rejects"
    store.finish_run(c.con, run_id, status, res.counts)
    dt = time.perf_counter() - t0
    roles = dict(c.con.execute("SELECT role_id, count(*) FROM posting_roles GROUP BY 1 ORDER BY 1").fetchall())
    if log_json:
        c.events("run_end", run_id=run_id, status=status, seconds=round(dt, 2), **res.counts, roles=roles,
                 reports=[str(p) for p in written])
    else:
        click.echo(f"run {run_id}: {res.counts['new']} new, {res.counts['updated']} updated, {res.counts['unchanged']} unchanged, "
                   f"{res.counts['rejected']} rejected; extracted {n} in {dt:.1f}s")
        click.echo("roles: " + ", ".join(f"{k} {v}" for k, v in roles.items()))
        if eng is not None:
            click.echo(f"dask: {eng.counts.done} partitions done, {eng.counts.failed} failed, {eng.counts.retried} retried")
    if log_json:
        for prof in mres.profiles:
            for w in prof.warnings:
                c.events("profile_warning", profile=prof.profile_id, message=w)
    else:
        _print_match_summary(c, mres)
    if not log_json:
        for p in written:
            click.echo(f"wrote {p}")
    if res.rejects:
        sys.exit(EXIT_REJECTS)


def _dask_engine(ctx: click.Context, engine: str, scheduler: str | None, processes: int) -> Any:
    """Connect to Dask before the database is opened or a run recorded, so a missing extra or an
    unreachable scheduler is one line and no half-started run."""
    if engine != "dask":
        if scheduler:
            _fail("--scheduler needs --engine dask", EXIT_USAGE)
        return None
    from .engine_dask import DaskEngine, DaskEngineError, require_dask

    try:
        require_dask()
    except DaskEngineError as exc:
        _fail(str(exc), EXIT_USAGE)
    try:
        eng = DaskEngine.connect(scheduler, n_workers=_procs(processes) if processes != 1 else None)
    except DaskEngineError as exc:
        _fail(str(exc))
    ctx.call_on_close(eng.close)
    return eng


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def runs(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List recent runs: start, end, status, counts, taxonomy version, duration.

    \b
    Example:
      jobfit runs --limit 5
    """
    c = _context(ctx)
    rows = c.con.execute(
        """SELECT run_id, command, started_at, finished_at, status, n_new, n_unchanged, n_updated, n_rejected, n_extracted,
                  taxonomy_version, round(date_diff('millisecond', started_at, finished_at) / 1000.0, 1) AS seconds,
                  coalesce(engine, 'local'), partitions_done, partitions_failed, partitions_retried
           FROM runs ORDER BY run_id DESC LIMIT ?""", [limit]).fetchall()
    cols = ["run_id", "command", "started_at", "finished_at", "status", "new", "unchanged", "updated", "rejected", "extracted", "taxonomy", "seconds",
            "engine", "partitions_done", "partitions_failed", "partitions_retried"]
    if as_json:
        for r in rows:
            click.echo(json.dumps({k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in zip(cols, r)}))
        return
    click.echo(f"{'run':>4} {'command':<7} {'started (UTC)':<19} {'ended':<8} {'status':<11} {'new':>6} {'unch':>6} {'upd':>5} {'rej':>4} {'extr':>6} {'secs':>7}  taxonomy")
    for r in rows:
        started = str(r[2])[:19] if r[2] else ""
        ended = str(r[3])[11:19] if r[3] else "-"
        click.echo(f"{r[0]:>4} {r[1]:<7} {started:<19} {ended:<8} {r[4]:<11} {r[5] or 0:>6} {r[6] or 0:>6} {r[7] or 0:>5} {r[8] or 0:>4} {r[9] or 0:>6} {r[11] if r[11] is not None else '':>7}  {r[10]}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def status(ctx: click.Context, as_json: bool) -> None:
    """What is pending: postings to extract (new, changed, or made by another taxonomy/extractor
    version), extractions without a role, and the last run's rejects.

    \b
    Example:
      jobfit status
    """
    from .nlp import EXTRACTOR_VERSION

    c = _context(ctx)
    pending = store.count_pending(c.con, c.tax.version, EXTRACTOR_VERSION)
    info = {
        "postings": c.con.execute("SELECT count(*) FROM postings").fetchone()[0],
        "pending_extraction": pending,
        "without_role": c.con.execute("SELECT count(*) FROM extractions LEFT JOIN posting_roles USING (posting_id) WHERE posting_roles.posting_id IS NULL").fetchone()[0],
        "taxonomy_version": c.tax.version,
    }
    last = c.con.execute("SELECT run_id, status, finished_at FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    info["last_run"] = {"run_id": last[0], "status": last[1], "finished_at": str(last[2]) if last[2] else None} if last else None
    rejects = c.con.execute("SELECT source, record, reason FROM rejects WHERE run_id = ? ORDER BY source, record", [last[0] if last else -1]).fetchall()
    info["last_run_rejects"] = [{"source": s, "record": r, "reason": why} for s, r, why in rejects]
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"postings: {info['postings']}, pending extraction: {pending}, without role: {info['without_role']} (taxonomy {c.tax.version})")
    if last:
        click.echo(f"last run: {last[0]} {last[1]} {str(last[2])[:19] if last[2] else ''}")
    for r in info["last_run_rejects"]:
        click.echo(f"  rejected: {r['source']}: {r['reason']}")


@cli.command()
@click.option("--older-than", "days", type=click.IntRange(min=0), required=True, help="Days.")
@click.pass_context
@friendly
def prune(ctx: click.Context, days: int) -> None:
    """Remove runs (and their reject records) finished more than DAYS days ago, and extraction
    rows that no longer belong to a stored posting. Postings and current extractions stay.

    \b
    Example:
      jobfit prune --older-than 90
    """
    from .runner import _in_transaction

    c = _context(ctx)

    def work() -> tuple[int, int]:
        old = [r[0] for r in c.con.execute(
            "SELECT run_id FROM runs WHERE status <> 'running' AND coalesce(finished_at, started_at) < now()::TIMESTAMP - to_days(?)", [days]).fetchall()]
        c.con.execute("DELETE FROM rejects WHERE run_id IN (SELECT unnest(?))", [old])
        c.con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?))", [old])
        orphans = 0
        for t in ("extractions", "extraction_items", "extraction_codes", "extraction_signals", "posting_roles", "matches"):
            orphans += c.con.execute(f"DELETE FROM {t} WHERE posting_id NOT IN (SELECT posting_id FROM postings)").fetchone()[0]
        return len(old), orphans

    n_runs, n_rows = _in_transaction(c, work)
    click.echo(f"pruned {n_runs} run(s) older than {days} day(s) and {n_rows} orphaned extraction row(s)")


@cli.command()
@click.argument("posting_file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--profile", required=True, type=click.Path(exists=True, dir_okay=False), help="Profile file (YAML, JSON or JSON Resume).")
@click.option("--json", "as_json", is_flag=True, help="Print the fit as JSON (one object per posting).")
@click.pass_context
@friendly
def score(ctx: click.Context, posting_file: str, profile: str, as_json: bool) -> None:
    """Score one posting file against one profile and print a fit card. Nothing is stored.

    \b
    Example:
      jobfit score sample_postings/txt/medical_coder_phoenix.txt --profile sample_profiles/entry_cca.yaml
    """
    from .runner import score as do_score

    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    items = list(read_postings([posting_file], stdin=sys.stdin.buffer))
    rejects = [i for i in items if isinstance(i, Reject)]
    if rejects:
        _fail(f"{rejects[0].source}: {rejects[0].reason}", EXIT_REJECTS)
    failed: list[Reject] = []
    prof, results = do_score([i for i in items if not isinstance(i, Reject)], profile, tax, failures=failed)
    for w in prof.warnings:
        click.echo(f"profile warning: {w}", err=True)
    if as_json:
        for rec, fit in results:
            click.echo(json.dumps({"title": rec["title"], "role": rec["role"]["id"], **fit.to_json()}, ensure_ascii=False))
    else:
        from .card import print_card

        for rec, fit in results:
            print_card(rec, fit, prof.name)
    _print_rejects(failed)
    if failed:
        sys.exit(EXIT_REJECTS)


# --- profiles ------------------------------------------------------------------------------


@cli.group()
def profile() -> None:
    """Check a profile, or draft one from a résumé."""


@profile.command("check")
@click.argument("profile_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--strict", is_flag=True, help="Exit 1 when any name does not resolve.")
@click.pass_context
@friendly
def profile_check(ctx: click.Context, profile_file: str, strict: bool) -> None:
    """Show how a profile (YAML, JSON or JSON Resume) reads against the taxonomy.

    \b
    Example:
      jobfit profile check sample_profiles/entry_cca.yaml
    """
    from .profile import load_profile

    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    prof = load_profile(profile_file, tax)
    data = prof.to_json()
    warnings = data.pop("warnings")
    click.echo(yaml_dump(data))
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if strict and warnings:
        sys.exit(EXIT_FAIL)


def yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).rstrip()


@profile.command("from-resume")
@click.argument("resume_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the draft profile here (default: print it).")
@click.pass_context
@friendly
def profile_from_resume(ctx: click.Context, resume_file: str, out: str | None) -> None:
    """Draft a profile from a résumé (.txt, .md, .pdf, .docx) with the posting extractor.
    What was found, and on which line, goes to stderr; the draft YAML to stdout or --out.

    \b
    Example:
      jobfit profile from-resume resume.pdf --out my_profile.yaml
    """
    from .runner import draft_profile

    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    draft = draft_profile(resume_file, tax)
    for f in draft.found:
        where = f"line {f.line}" if f.line else "whole text"
        click.echo(f"found {f.field}: {f.value}  ({where}: {f.text[:80]!r})", err=True)
    if not draft.found:
        click.echo("found nothing the taxonomy knows; the draft is empty", err=True)
    text = ("# Draft profile written by `jobfit profile from-resume` — check every field, then fill in\n"
            "# desired_pay, work_arrangement, locations and roles_of_interest (README: Profiles).\n" + yaml_dump(draft.profile) + "\n")
    if out:
        report_mod.atomic_write(Path(out), text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@cli.command("eval")
@click.argument("gold_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--gold", "gold_file", type=click.Path(exists=True, dir_okay=False), help="Gold JSONL (default GOLD_DIR/gold.jsonl).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--errors", "show_errors", is_flag=True, help="List every disagreement with the gold labels.")
@click.pass_context
@friendly
def eval_cmd(ctx: click.Context, gold_dir: str, gold_file: str | None, as_json: bool, show_errors: bool) -> None:
    """Precision/recall/F1 against gold labels.

    \b
    Examples:
      jobfit eval ../shared/real_postings
      jobfit eval sample_postings --gold tests/gold/samples_gold.jsonl
    """
    from .evaluate import evaluate

    tax = require_valid(load_taxonomy(Path(ctx.obj["taxonomy"]) if ctx.obj["taxonomy"] else None))
    gold = Path(gold_file) if gold_file else Path(gold_dir) / "gold.jsonl"
    if not gold.exists():
        _fail(f"{gold}: gold file not found (use --gold)", EXIT_USAGE)
    rep = evaluate(Path(gold_dir), gold, tax)
    if as_json:
        click.echo(json.dumps(rep.as_dict(), indent=2))
    else:
        click.echo(rep.table())
    if show_errors:
        for e in rep.errors:
            click.echo(f"  {e}")


def main() -> None:
    cli(prog_name="jobfit")


if __name__ == "__main__":
    main()
