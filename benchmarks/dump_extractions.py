"""Dump what the extractor produces, so a speed change can be proven not to change a byte of it.

Usage:  .venv/bin/python benchmarks/dump_extractions.py PATH... --out DIR [--limit N] [--processes J]

Writes two files into DIR:

* ``raw.jsonl`` — every extraction record exactly as :func:`pipeline.extract.extract` returns it
  (``data`` with sorted keys), one line per posting, in input order: the most sensitive view;
* ``export.jsonl`` — the published JSON contract (:func:`pipeline.export.records`) after a real
  ingest → extract_pending(processes=J) → roles run into a temporary DuckDB.

Run it before and after a change and ``diff`` the two directories; any difference is a behaviour
change, not a speed-up. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _limited(paths: list[str], limit: int) -> list[str]:
    """The first ``limit`` lines of a JSONL(.gz) corpus as a file of its own (others unchanged),
    at a fixed path: the path is part of each posting's ``source``, which the dumps compare."""
    if not limit:
        return paths
    tmp = Path(tempfile.gettempdir()) / "jobfit-dump-input"
    tmp.mkdir(exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        if p.endswith((".jsonl", ".jsonl.gz")):
            dst = tmp / f"{Path(p).name.split('.')[0]}-first{limit}.jsonl"
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rt", encoding="utf-8") as fh, dst.open("w", encoding="utf-8") as w:
                for n, line in enumerate(fh):
                    if n >= limit:
                        break
                    w.write(line)
            out.append(str(dst))
        else:
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N records of each JSONL corpus (0 = all)")
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args()

    from pipeline import export, runner
    from pipeline.extract import ExtractError, extract
    from pipeline.ingest import Posting, read_postings

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        paths = _limited(args.paths, args.limit)
        ctx = runner.open_context(str(tmp / "dump.duckdb"), cache_dir=tmp / "cache")
        with (out / "raw.jsonl").open("w", encoding="utf-8") as fh:
            postings = (p for p in read_postings(paths) if isinstance(p, Posting))
            for posting, ex in extract(postings, ctx.nlp):
                if isinstance(ex, ExtractError):
                    rec = {"posting_id": ex.posting_id, "error": ex.reason}
                else:
                    rec = {"posting_id": ex.posting_id, "content_hash": ex.content_hash, "data": ex.data}
                fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
        runner.ingest(ctx, paths)
        runner.extract_pending(ctx, processes=args.processes)
        with (out / "export.jsonl").open("w", encoding="utf-8") as fh:
            for rec in export.records(ctx.con, order="posting_id"):
                fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
        ctx.con.close()
    print(f"wrote {out / 'raw.jsonl'} and {out / 'export.jsonl'}")


if __name__ == "__main__":
    main()
