"""Throughput of the jobfit pipeline on the real NHS corpus, against the blank-tokenizer floor.

Usage:  .venv/bin/python benchmarks/bench_run.py [CORPUS] [--limit N] [--processes 1,2]

CORPUS defaults to ../shared/corpora/nhs_jobs_2020.jsonl.gz. For each process count it measures, in
this one run: the spaCy blank-English tokenizer alone over the same texts (the floor; workers return
token counts, not Docs), then ingest, extract (+ store + roles), match, report and end to end through
the Python API the CLI uses, an incremental rerun over the unchanged corpus, and prints postings/second,
the end-to-end / tokenizer ratio and this process's peak RSS. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_tok = None


def _tok_init() -> None:
    global _tok
    import spacy

    _tok = spacy.blank("en")


def _tok_count(texts: list[str]) -> int:
    return sum(len(d) for d in _tok.tokenizer.pipe(texts))


def tokenizer_rate(corpus: Path, processes: int) -> float:
    """Seconds for the blank tokenizer over the same normalised texts the pipeline sees. The texts
    are read and normalised before the clock starts, so the floor is tokenizing and nothing else."""
    from pipeline.ingest import normalize_text

    texts = []
    with gzip.open(corpus, "rt", encoding="utf-8") if corpus.suffix == ".gz" else corpus.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts.append(normalize_text(f"{rec.get('title') or ''}\n\n{rec.get('description') or ''}"))
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    if processes == 1:
        _tok_init()
        t = time.perf_counter()
        for c in chunks:
            _tok_count(c)
        return time.perf_counter() - t
    with mp.get_context("spawn").Pool(processes, initializer=_tok_init) as pool:
        pool.map(_tok_count, [["warm up"]] * processes)  # worker start-up is not tokenizing
        t = time.perf_counter()
        for _ in pool.imap(_tok_count, chunks, chunksize=1):
            pass
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "nhs_jobs_2020.jsonl.gz"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N postings (0 = all)")
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts to measure")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        sys.exit(f"corpus not found: {corpus}")

    from pipeline import report, runner

    with tempfile.TemporaryDirectory() as tmp:
        src = corpus
        if args.limit:
            src = Path(tmp) / "corpus.jsonl"
            with gzip.open(corpus, "rt", encoding="utf-8") as fh, src.open("w", encoding="utf-8") as out:
                for i, line in enumerate(fh):
                    if i >= args.limit:
                        break
                    out.write(line)
        print(f"corpus: {corpus.name}{f' (first {args.limit})' if args.limit else ''}")
        print(f"{'processes':>9} {'stage':<28}{'seconds':>10}{'postings/s':>14}")
        for procs in [int(p) for p in args.processes.split(",")]:
            tok_s = tokenizer_rate(src, procs)
            ctx = runner.open_context(str(Path(tmp) / f"bench{procs}.duckdb"), cache_dir=Path(tmp) / "cache")
            _ = ctx.nlp  # build/load the pipeline outside the timings, as a nightly run's cache does
            t0 = time.perf_counter()
            res = runner.ingest(ctx, [str(src)])
            t1 = time.perf_counter()
            n_ex = runner.extract_pending(ctx, processes=procs)
            t2 = time.perf_counter()
            runner.match(ctx, None)
            t3 = time.perf_counter()
            report.write_reports(ctx.con, Path(tmp) / f"reports{procs}", ("html", "md", "csv", "json"))
            t4 = time.perf_counter()
            runner.ingest(ctx, [str(src)])
            n_ex2 = runner.extract_pending(ctx, processes=procs)
            t5 = time.perf_counter()
            n = res.counts["new"]
            e2e = t4 - t0
            for name, secs in (("tokenizer only (floor)", tok_s), ("ingest", t1 - t0), ("extract + store + roles", t2 - t1),
                               ("match (roles, all)", t3 - t2), ("report (html,md,csv,json)", t4 - t3),
                               ("end to end", e2e), ("incremental rerun", t5 - t4)):
                print(f"{procs:>9} {name:<28}{secs:>10.2f}{n / secs if secs else float('inf'):>14.1f}")
            print(f"{procs:>9} end-to-end / tokenizer rate: {tok_s / e2e:.3f}; incremental rerun {(t5 - t4) / e2e:.1%} of the full run "
                  f"({n_ex2} re-extracted); {n_ex} extracted, {res.counts['rejected']} rejected")
            ctx.con.close()
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          f"(workers: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
