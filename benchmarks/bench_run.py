"""Throughput of `jobfit run` on the real NHS corpus, against the blank-tokenizer floor.

Usage:  .venv/bin/python benchmarks/bench_run.py [CORPUS] [--limit N]
CORPUS defaults to ../shared/corpora/nhs_jobs_2020.jsonl.gz. Prints postings/second for the
tokenizer alone (spaCy blank English, same texts, same process), for each stage of the pipeline
and end to end, and the ratio end-to-end / tokenizer. Numbers are measured in this run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "nhs_jobs_2020.jsonl.gz"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N postings (0 = all)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        sys.exit(f"corpus not found: {corpus}")

    import spacy

    from pipeline import report, runner
    from pipeline.ingest import read_postings

    with tempfile.TemporaryDirectory() as tmp:
        src = corpus
        if args.limit:
            src = Path(tmp) / "corpus.jsonl"
            with gzip.open(corpus, "rt", encoding="utf-8") as fh, src.open("w", encoding="utf-8") as out:
                for i, line in enumerate(fh):
                    if i >= args.limit:
                        break
                    out.write(line)
        postings = [p for p in read_postings([str(src)]) if hasattr(p, "text")]
        n = len(postings)
        texts = [p.text for p in postings]

        nlp0 = spacy.blank("en")
        t = time.perf_counter()
        for _ in nlp0.pipe(texts, batch_size=256):
            pass
        tok = time.perf_counter() - t

        ctx = runner.open_context(str(Path(tmp) / "bench.duckdb"), cache_dir=Path(tmp) / "cache")
        _ = ctx.nlp  # build/load the pipeline outside the timings (a cached load, as in a nightly run)
        t0 = time.perf_counter()
        res = runner.ingest(ctx, [str(src)])
        t1 = time.perf_counter()
        n_ex = runner.extract_pending(ctx)
        t2 = time.perf_counter()
        runner.match(ctx, None)
        t3 = time.perf_counter()
        report.write_reports(ctx.con, Path(tmp) / "reports", ("html", "md", "csv", "json"))
        t4 = time.perf_counter()
        t5 = time.perf_counter()
        res2 = runner.ingest(ctx, [str(src)])
        n_ex2 = runner.extract_pending(ctx)
        t6 = time.perf_counter()
        roles = ctx.con.execute("SELECT role_id, count(*) FROM posting_roles GROUP BY 1 ORDER BY 2 DESC").fetchall()

    e2e = t4 - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpus: {corpus.name}, {n} postings ({res.counts['new']} stored, {res.counts['rejected']} rejected), 1 process")
    print(f"{'stage':<28}{'seconds':>10}{'postings/s':>14}")
    for name, secs, count in (
        ("tokenizer only (floor)", tok, n),
        ("ingest", t1 - t0, n),
        ("extract + store + roles", t2 - t1, n_ex),
        ("match (roles, all)", t3 - t2, n),
        ("report (html,md,csv,json)", t4 - t3, n),
        ("end to end (jobfit run)", e2e, n),
        ("incremental rerun", t6 - t5, n),
    ):
        print(f"{name:<28}{secs:>10.2f}{count / secs if secs else float('inf'):>14.1f}")
    print(f"end-to-end / tokenizer-only rate: {tok / e2e:.3f}")
    print(f"incremental rerun: {res2.counts['unchanged']} unchanged, {n_ex2} re-extracted, {(t6 - t5) / e2e:.1%} of the full run")
    print(f"peak RSS: {rss:.0f} MB")
    print("roles: " + ", ".join(f"{r} {c}" for r, c in roles))


if __name__ == "__main__":
    main()
