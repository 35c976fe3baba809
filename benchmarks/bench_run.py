"""Throughput and memory of the jobfit pipeline on the real NHS corpus replicated to N postings,
against the spaCy blank-tokenizer floor. A benchmark, not a test: it prints numbers.

Usage:  .venv/bin/python benchmarks/bench_run.py [CORPUS] [--n 100000] [--small-n 25000]
                                                 [--limit L] [--processes 1,2] [--json FILE]

CORPUS defaults to ../shared/corpora/nhs_jobs_2020.jsonl.gz (14,842 real postings). The harness
streams it into a temporary JSON Lines file of N postings — copy k of posting ID gets the id
``ID~rk`` and a "Vacancy reference: k" line, so every posting is distinct (no content-hash or id
deduplication can hide work) while the vocabulary stays that of real postings — and then, for each
process count, measures in one run:

* the blank English tokenizer alone over the very texts the pipeline stores (the floor; with two
  processes, workers return token counts, not Docs);
* ingest (records parsed on the same number of processes), extract (+ store + roles), match and
  report, each in a child process of its own, so the
  peak RSS printed for a stage is that stage's (the child's ``ru_maxrss``, and its extraction
  workers' separately); end to end is the sum of the four stage times (pipeline and imports
  loaded outside the clock, as a nightly run's cache does);
* an incremental rerun (ingest + extract) over the unchanged corpus, as % of the full run;
* with ``--small-n``, the same stages again at a smaller N, to show whether peak RSS is flat in N;
* once: ``jobfit score`` on one posting, cold (a new process, pipeline loaded from the cache).

``--limit L`` uses only the first L postings of CORPUS as the base to replicate (quick runs:
``--limit 2000 --n 4000 --small-n 0``); ``--skip-report`` leaves out the report stage, whose HTML page
of every posting takes minutes at 100,000 postings. Nothing is held in memory: corpus, postings and texts
stream from disk.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT_CHUNK = 256


# --- the replicated corpus -------------------------------------------------------------------


def replicate(src: Path, dst: Path, n: int, limit: int = 0) -> int:
    """Write ``n`` postings to ``dst`` by cycling over ``src`` (its first ``limit`` records when
    ``limit``), one line at a time; returns how many were written."""
    opener = gzip.open if src.suffix == ".gz" else open
    written, copy = 0, 0
    with dst.open("w", encoding="utf-8") as out:
        while written < n:
            before = written
            with opener(src, "rt", encoding="utf-8") as fh:
                for i, line in enumerate(fh):
                    if (limit and i >= limit) or written >= n:
                        break
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if copy:
                        rec["id"] = f"{rec.get('id', i)}~r{copy}"
                        rec["description"] = f"{rec.get('description') or ''}\n\nVacancy reference: {copy}."
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    written += 1
            if written == before:
                raise SystemExit(f"no records in {src}")
            copy += 1
    return written


# --- child processes: one stage each -------------------------------------------------------------


def _rss() -> dict[str, float]:
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


_tok = None


def _tok_init() -> None:
    global _tok
    import spacy

    _tok = spacy.blank("en")


def _tok_count(texts: list[str]) -> int:
    return sum(len(d) for d in _tok.tokenizer.pipe(texts))


def _texts(db: str):
    """The stored texts, a chunk at a time (keyset pagination: flat memory)."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    last = ""
    try:
        while True:
            rows = con.execute("SELECT posting_id, text FROM postings WHERE posting_id > ? ORDER BY posting_id LIMIT ?",
                               [last, TEXT_CHUNK]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]
    finally:
        con.close()


def stage_tokenizer(db: str, processes: int) -> dict:
    """The floor: seconds spent tokenizing the stored texts (reading them is not timed with one
    process; with two, the parent reads while the workers tokenize)."""
    import multiprocessing as mp

    n, secs = 0, 0.0
    if processes == 1:
        _tok_init()
        for chunk in _texts(db):
            t = time.perf_counter()
            _tok_count(chunk)
            secs += time.perf_counter() - t
            n += len(chunk)
        return {"seconds": secs, "n": n, **_rss()}
    with mp.get_context("spawn").Pool(processes, initializer=_tok_init) as pool:
        pool.map(_tok_count, [["warm up"]] * processes)  # worker start-up is not tokenizing
        sizes = []
        t = time.perf_counter()
        for _ in pool.imap(_tok_count, (sizes.append(len(c)) or c for c in _texts(db)), chunksize=1):
            pass
        secs = time.perf_counter() - t
        n = sum(sizes)
    return {"seconds": secs, "n": n, **_rss()}


def stage_pipeline(stage: str, db: str, corpus: str, processes: int, cache: str, out: str) -> dict:
    from pipeline import report, runner

    ctx = runner.open_context(db, cache_dir=Path(cache))
    if stage in ("extract", "rerun"):
        _ = ctx.nlp  # loaded from the cache outside the clock
    t = time.perf_counter()
    info: dict = {}
    import inspect

    # parse on the same number of processes where the runner can (it could not before issue 5)
    par = {"processes": processes} if "processes" in inspect.signature(runner.ingest).parameters else {}
    if stage == "ingest":
        res = runner.ingest(ctx, [corpus], **par)
        info = {"n": res.counts["new"], "rejected": res.counts["rejected"]}
    elif stage == "extract":
        info = {"n": runner.extract_pending(ctx, processes=processes)}
    elif stage == "match":
        info = {"n": runner.match(ctx, None, reclassify=True).n_postings}
    elif stage == "report":
        report.write_reports(ctx.con, Path(out), ("html", "md", "csv", "json"))
        info = {"n": ctx.con.execute("SELECT count(*) FROM extractions").fetchone()[0]}
    elif stage == "rerun":
        res = runner.ingest(ctx, [corpus], **par)
        info = {"n": res.counts["unchanged"], "re_extracted": runner.extract_pending(ctx, processes=processes)}
    secs = time.perf_counter() - t
    ctx.con.close()
    return {"seconds": secs, **info, **_rss()}


def run_child(**kw) -> dict:
    """Run one stage in a fresh Python process and return what it measured."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(kw)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"stage {kw} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {kw['stage']} on {kw['processes']} proc: {out['seconds']:.2f} s, peak RSS {out['rss_mb']:.0f} MB; load {_load()}",
          file=sys.stderr, flush=True)
    return out


# --- the run --------------------------------------------------------------------------------------


def measure(corpus: Path, n: int, processes: list[int], tmp: Path, limit: int, cache: Path, skip_report: bool = False) -> dict:
    data = tmp / f"corpus-{n}.jsonl"
    t = time.perf_counter()
    written = replicate(corpus, data, n, limit)
    print(f"\nN = {written:,} postings ({data.stat().st_size / 1e6:,.0f} MB of JSON Lines, written in {time.perf_counter() - t:.1f} s)")
    results: dict = {"n": written, "configs": {}}
    for procs in processes:
        db = str(tmp / f"bench-{n}-{procs}.duckdb")
        common = {"db": db, "corpus": str(data), "processes": procs, "cache": str(cache), "out": str(tmp / f"reports-{n}-{procs}")}
        r: dict = {}
        r["ingest"] = run_child(stage="ingest", **common)
        r["tokenizer"] = run_child(stage="tokenizer", db=db, processes=procs)
        for stage in ("extract", "match", "report", "rerun"):
            if stage == "report" and skip_report:
                r[stage] = {"seconds": float("nan"), "rss_mb": float("nan"), "workers_rss_mb": 0.0}
                continue
            r[stage] = run_child(stage=stage, **common)
        r["e2e_seconds"] = sum(r[s]["seconds"] for s in ("ingest", "extract", "match") + (() if skip_report else ("report",)))
        results["configs"][procs] = r
        os.unlink(db)
    data.unlink()
    return results


def print_table(res: dict, load: str) -> None:
    n = res["n"]
    print(f"{'stage':<34}" + "".join(f"{f'{p} proc: s':>12}{'postings/s':>12}{'peak RSS MB':>13}" for p in res["configs"]))
    rows = [("tokenizer only (floor)", "tokenizer"), ("ingest (read, parse, store)", "ingest"),
            ("extract + store + roles", "extract"), ("match (roles, all)", "match"), ("report (html,md,csv,json)", "report")]
    for label, key in rows:
        line = f"{label:<34}"
        for r in res["configs"].values():
            s = r[key]
            rss = f"{s['rss_mb']:.0f}" + (f" (w {s['workers_rss_mb']:.0f})" if s["workers_rss_mb"] > 1 and key in ("extract", "tokenizer") else "")
            line += f"{s['seconds']:>12.2f}{n / s['seconds']:>12,.0f}{rss:>13}"
        print(line)
    skipped = any(r["report"]["seconds"] != r["report"]["seconds"] for r in res["configs"].values())  # NaN: not run
    line = f"{'end to end (stages above, no report)' if skipped else 'end to end (sum of the four stages)':<34}"
    for r in res["configs"].values():
        peak = max(r[s]["rss_mb"] for s in ("ingest", "extract", "match") + (() if skipped else ("report",)))
        line += f"{r['e2e_seconds']:>12.2f}{n / r['e2e_seconds']:>12,.0f}{peak:>13.0f}"
    print(line)
    line = f"{'incremental rerun (unchanged)':<34}"
    for r in res["configs"].values():
        line += f"{r['rerun']['seconds']:>12.2f}{'':>12}{r['rerun']['rss_mb']:>13.0f}"
    print(line)
    best_tok = max(n / r["tokenizer"]["seconds"] for r in res["configs"].values())
    for p, r in res["configs"].items():
        e2e = n / r["e2e_seconds"]
        print(f"{p} proc: end-to-end / tokenizer on {p} proc = {e2e / (n / r['tokenizer']['seconds']):.3f}; "
              f"end-to-end / best tokenizer rate = {e2e / best_tok:.3f}; extract / tokenizer = "
              f"{(n / r['extract']['seconds']) / (n / r['tokenizer']['seconds']):.3f}; incremental rerun = "
              f"{r['rerun']['seconds'] / r['e2e_seconds']:.2%} of the full run ({r['rerun']['re_extracted']} re-extracted); "
              f"{r['ingest']['rejected']} rejected")
    print(f"load average at the end: {load}")


def score_cold(cache: Path, repeats: int = 3) -> list[float]:
    posting = next(p for p in sorted((ROOT / "sample_postings").rglob("*")) if p.is_file() and p.suffix in (".txt", ".md"))
    profile = ROOT / "sample_profiles" / "experienced_cpc_coder.yaml"
    exe = Path(sys.executable).parent / "jobfit"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
    env = {**os.environ, "JOBFIT_CACHE": str(cache)}
    subprocess.run(cmd + ["score", str(posting), "--profile", str(profile)], env=env, capture_output=True, cwd=ROOT)  # warms the cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run(cmd + ["score", str(posting), "--profile", str(profile)], env=env, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"jobfit score failed: {proc.stderr.decode()[-2000:]}")
    return times


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        kw = json.loads(sys.argv[2])
        stage = kw.pop("stage")
        out = stage_tokenizer(kw["db"], kw["processes"]) if stage == "tokenizer" else stage_pipeline(stage, **kw)
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "nhs_jobs_2020.jsonl.gz"))
    ap.add_argument("--n", type=int, default=100_000, help="postings to replicate the corpus to (default 100,000)")
    ap.add_argument("--small-n", type=int, default=-1, help="a second, smaller N for the RSS comparison (default N/4; 0 = none)")
    ap.add_argument("--limit", type=int, default=0, help="replicate only the first L postings of CORPUS (0 = all)")
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts to measure")
    ap.add_argument("--json", help="also write the measurements to this JSON file")
    ap.add_argument("--skip-report", action="store_true",
                    help="do not run the report stage (it renders every posting into one HTML page and takes minutes at "
                         "100,000); end to end is then ingest + extract + match, and says so")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        sys.exit(f"corpus not found: {corpus}")
    processes = [int(p) for p in args.processes.split(",")]
    small = args.n // 4 if args.small_n < 0 else args.small_n
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) / 1024**2 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, Python {sys.version.split()[0]}; load average at start: {_load()}")
    print(f"corpus: {corpus}{f' (first {args.limit})' if args.limit else ''}")
    report: dict = {"machine": {"cpus": os.cpu_count(), "cpu": cpu, "ram_gib": round(mem, 1)}, "load_start": _load(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="jobfit-bench-") as t:
        tmp = Path(t)
        cache = tmp / "cache"
        for n in [args.n] + ([small] if small else []):
            res = measure(corpus, n, processes, tmp, args.limit, cache, args.skip_report)
            res["load_end"] = _load()
            print_table(res, res["load_end"])
            report["runs"].append(res)
        times = score_cold(cache)
        report["score_cold_seconds"] = times
        print(f"\njobfit score, one posting, cold (new process, pipeline from the cache): "
              f"median {statistics.median(times):.2f} s of {', '.join(f'{x:.2f}' for x in times)}; load average {_load()}")
    if len(report["runs"]) == 2:
        a, b = report["runs"]
        for p in processes:
            ra, rb = a["configs"][p], b["configs"][p]
            print(f"peak RSS, {p} proc, N={a['n']:,} vs N={b['n']:,}: " + ", ".join(
                f"{s} {ra[s]['rss_mb']:.0f} vs {rb[s]['rss_mb']:.0f} MB" for s in ("ingest", "extract", "match", "report"))
                + (f"; extraction workers {ra['extract']['workers_rss_mb']:.0f} vs {rb['extract']['workers_rss_mb']:.0f} MB" if p > 1 else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
