"""The Dask engine on local workers against the local engine (-j N), same corpus, same run.

Usage:  .venv/bin/python benchmarks/bench_dask.py [CORPUS] [--limit N] [--workers 2] [--partition 500]

CORPUS defaults to ../shared/corpora/nhs_jobs_2020.jsonl.gz. Both engines go through the Python API the
CLI uses (runner.ingest + runner.extract_pending, the steps the engine changes; match and reports are
the same code for both) on fresh databases, with the spaCy pipeline already cached. Prints seconds and
postings/second per engine, the LocalCluster start-up, the overhead per partition ((Dask - local) /
partitions), and the bare Dask round trip of an empty partition through the same ordered, windowed
submission. Also checks the two databases hold the same extraction rows. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from corpus import head  # benchmarks/corpus.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _noop(x: int) -> int:
    return x


def _load() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "nhs_jobs_2020.jsonl.gz"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N postings (0 = all)")
    ap.add_argument("--workers", type=int, default=2, help="local processes for both engines")
    ap.add_argument("--partition", type=int, default=500, help="postings per Dask partition (JOBFIT_PARTITION)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        sys.exit(f"corpus not found: {corpus}")
    os.environ["JOBFIT_PARTITION"] = str(args.partition)

    from pipeline import runner
    from pipeline.engine_dask import DaskEngine

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        os.environ["JOBFIT_CACHE"] = str(cache)  # the workers find the pipeline the driver saved
        src = head(corpus, args.limit, Path(tmp))
        print(f"corpus: {corpus.name}{f' (first {args.limit})' if args.limit else ''}; {args.workers} processes; "
              f"partition {args.partition}; load average before: {_load()}")

        # local engine
        ctx = runner.open_context(str(Path(tmp) / "local.duckdb"), cache_dir=cache)
        _ = ctx.nlp
        t0 = time.perf_counter()
        res = runner.ingest(ctx, [str(src)])
        t1 = time.perf_counter()
        n_local = runner.extract_pending(ctx, processes=args.workers)
        t2 = time.perf_counter()
        local = {"ingest": t1 - t0, "extract": t2 - t1, "total": t2 - t0}
        rows_local = ctx.con.execute("SELECT count(*), sum(hash(posting_id || content_hash)) FROM extractions").fetchone()
        ctx.con.close()
        n = res.counts["new"]

        # Dask engine
        s0 = time.perf_counter()
        eng = DaskEngine.connect(None, n_workers=args.workers)
        s1 = time.perf_counter()
        try:
            ctx = runner.open_context(str(Path(tmp) / "dask.duckdb"), cache_dir=cache)
            extractor = eng.extractor(ctx.tax, cache)  # registers the worker plugin: workers load the pipeline
            eng.client.run(lambda: None)
            t0 = time.perf_counter()
            res_d = runner.ingest(ctx, [str(src)], reader=eng.ingest_reader(ctx, [str(src)]))
            t1 = time.perf_counter()
            read_parts = eng.counts.done
            n_dask = runner.extract_pending(ctx, extractor=extractor)
            t2 = time.perf_counter()
            parts = eng.counts.done
            dask = {"ingest": t1 - t0, "extract": t2 - t1, "total": t2 - t0}
            rows_dask = ctx.con.execute("SELECT count(*), sum(hash(posting_id || content_hash)) FROM extractions").fetchone()
            ctx.con.close()
            # bare round trip: 200 empty partitions through the same ordered, windowed submission
            r0 = time.perf_counter()
            for _ in eng._ordered("noop", ((_noop, (i,), i) for i in range(200)), lambda tag, exc: None):
                pass
            rt = (time.perf_counter() - r0) / 200
        finally:
            eng.close()

        assert res_d.counts["new"] == n and n_dask == n_local and rows_dask == rows_local, "engines disagree"
        print(f"{'engine':<22}{'ingest s':>10}{'extract s':>11}{'total s':>9}{'postings/s':>12}")
        print(f"{'local -j ' + str(args.workers):<22}{local['ingest']:>10.2f}{local['extract']:>11.2f}{local['total']:>9.2f}{n / local['total']:>12.1f}")
        print(f"{'dask ' + str(args.workers) + ' workers':<22}{dask['ingest']:>10.2f}{dask['extract']:>11.2f}{dask['total']:>9.2f}{n / dask['total']:>12.1f}")
        print(f"postings {n}, extracted {n_dask} (same rows in both databases); partitions {parts} "
              f"({read_parts} read, {parts - read_parts} extract), {eng.counts.retried} retried, {eng.counts.failed} failed")
        print(f"LocalCluster start-up: {s1 - s0:.2f} s (not in the totals)")
        print(f"overhead per partition vs local: {(dask['total'] - local['total']) / parts * 1000:.0f} ms; "
              f"bare Dask round trip of an empty partition: {rt * 1000:.1f} ms")
        print(f"per-core rate (dask extract): {n / dask['extract'] / args.workers:.1f} postings/s/core")
        print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
