"""Recruiter-scale matching: P generated profiles × N postings, ranked in DuckDB SQL, top K per profile.

Usage:  .venv/bin/python benchmarks/bench_match.py [CORPUS] [--profiles 1000] [--postings 100000] [--top 20]
                                                   [--top-per-posting 5] [--limit N] [--threads T]

The postings are the real NHS corpus (../shared/corpora/nhs_jobs_2020.jsonl.gz), extracted once
with the real pipeline (2 processes) and then copied inside DuckDB under new ids until there are
N of them: the copies keep the extracted items, so every posting carries real requirement masks;
the cost of the fit SQL is per pair, whatever the text. The profiles are generated from the
taxonomy with a fixed seed (credentials, statuses, skills, software, code systems, years per area,
education, pay, arrangement, roles) and written as YAML files, so loading them is measured too.

Printed, all measured in this run: extraction of the base corpus (not part of matching), profile
loading, the scoring and ranking of every pair with top-K selection, the explanation and storing of
the kept pairs, the whole `match`, pairs per second, and this process's peak RSS. Not a test.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate_profiles(folder: Path, n: int, tax, seed: int = 7) -> None:
    """n plausible billing/coding profiles, as a recruiter's candidate pool would look."""
    rnd = random.Random(seed)
    creds = [c for c in tax.terms["credential"] if not c.startswith("ANY_")]
    common = ["CPC", "CCS", "CCA", "RHIT", "CPB", "CRC", "COC", "CPC-A", "CBCS", "CCS-P", "RHIA", "CPMA", "CDIP", "CCDS"]
    skills = sorted(t.id for t in tax.terms["skill"].values() if t.category not in ("education", "work_setting"))
    systems = sorted(tax.terms["code_system"])
    edus = sorted(tax.terms["education"])
    roles = sorted(tax.roles)
    for i in range(n):
        k = rnd.choice((0, 1, 1, 2, 2, 3))
        held = rnd.sample(common, k) if rnd.random() < 0.9 else rnd.sample(creds, k)
        cred_entries = [c if rnd.random() < 0.85 else {"id": c, "status": rnd.choice(("in_progress", "expired"))} for c in held]
        years = round(rnd.uniform(0, 15), 1)
        prof = {
            "name": f"Candidate {i:04d}",
            "credentials": cred_entries,
            "skills": rnd.sample(skills, rnd.randint(3, 14)),
            "code_systems": rnd.sample(systems, rnd.randint(1, 5)),
            "experience_years": years,
            "experience": {"coding": round(years * rnd.random(), 1), "billing": round(years * rnd.random(), 1),
                           "inpatient": round(years * rnd.random() * 0.5, 1)},
            "education": rnd.choice(edus),
            "desired_pay": rnd.choice(({"min": rnd.randint(16, 38), "period": "hour", "currency": "USD"},
                                       {"min": rnd.randint(19000, 42000), "period": "year", "currency": "GBP"})),
            "work_arrangement": rnd.sample(["remote", "hybrid", "onsite"], rnd.randint(1, 3)),
            "roles_of_interest": rnd.sample(roles, rnd.randint(1, 3)),
        }
        (folder / f"candidate_{i:04d}.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))


def replicate(con, target: int) -> int:
    """Copy the extracted postings under new ids until there are ``target`` of them."""
    base = con.execute("SELECT count(*) FROM extractions").fetchone()[0]
    reps = -(-target // base)
    con.execute("BEGIN")
    con.execute("CREATE TEMP TABLE base_ids AS SELECT posting_id, row_number() OVER (ORDER BY posting_id) AS n FROM extractions")
    con.execute(f"CREATE TEMP TABLE copies AS SELECT b.posting_id AS old, b.posting_id || '~' || r AS new FROM base_ids b, range(1, {reps}) t(r) "
                f"WHERE (r * {base} + b.n) <= {target}")
    for table in ("postings", "extractions", "extraction_items", "extraction_signals", "posting_roles"):
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        sel = ", ".join("c.new" if c == "posting_id" else f"t.{c}" for c in cols)
        con.execute(f"INSERT INTO {table} SELECT {sel} FROM {table} t JOIN copies c ON c.old = t.posting_id")
    con.execute("COMMIT")
    return con.execute("SELECT count(*) FROM extractions").fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpora" / "nhs_jobs_2020.jsonl.gz"))
    ap.add_argument("--profiles", type=int, default=1000)
    ap.add_argument("--postings", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--top-per-posting", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="extract only the first N corpus postings before copying")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0 = DuckDB's default, every core)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    if not corpus.exists():
        sys.exit(f"corpus not found: {corpus} (the benchmark needs ../shared)")

    from corpus import head  # benchmarks/corpus.py, beside this script

    from pipeline import runner

    with tempfile.TemporaryDirectory() as tmp:
        src = head(corpus, args.limit, Path(tmp))
        ctx = runner.open_context(str(Path(tmp) / "match.duckdb"), cache_dir=Path(tmp) / "cache")
        if args.threads:
            ctx.con.execute(f"SET threads = {args.threads}")
        t = time.perf_counter()
        runner.ingest(ctx, [str(src)])
        runner.extract_pending(ctx, processes=2)
        t_extract = time.perf_counter() - t
        n_base = ctx.con.execute("SELECT count(*) FROM extractions").fetchone()[0]
        t = time.perf_counter()
        n_post = replicate(ctx.con, args.postings) if args.postings > n_base else n_base
        t_rep = time.perf_counter() - t
        pdir = Path(tmp) / "profiles"
        pdir.mkdir()
        generate_profiles(pdir, args.profiles, ctx.tax)

        from pipeline.fit import score_all
        from pipeline.profile import load_profile, profile_files

        t = time.perf_counter()
        profiles = [load_profile(p, ctx.tax) for p in profile_files(pdir)]
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        run = score_all(ctx.con, profiles, ctx.tax, top=args.top, top_per_posting=args.top_per_posting, store=False)
        t_rank = time.perf_counter() - t
        from pipeline.fit import _store

        t = time.perf_counter()
        ctx.con.execute("BEGIN")
        _store(ctx.con, ctx.tax, [p.profile_id for p in profiles])
        ctx.con.execute("COMMIT")
        t_store = time.perf_counter() - t
        # the whole command path as `jobfit match --profiles DIR` runs it (roles, load, score, store)
        t = time.perf_counter()
        res = runner.match(ctx, profiles_dir=pdir, top=args.top, top_per_posting=args.top_per_posting)
        t_match = time.perf_counter() - t
        kept = ctx.con.execute("SELECT count(*), count(rank_in_profile), count(rank_in_posting) FROM matches").fetchone()
        threads = ctx.con.execute("SELECT current_setting('threads')").fetchone()[0]
        ctx.con.close()

    pairs = run.n_pairs
    print(f"corpus: {corpus.name}: {n_base} postings extracted in {t_extract:.1f}s (2 processes), copied to {n_post} in {t_rep:.1f}s")
    print(f"profiles: {len(profiles)} generated; DuckDB threads: {threads}")
    print(f"{'stage':<44}{'seconds':>9}")
    for name, secs in ((f"load {len(profiles)} profile files", t_load),
                       (f"score {pairs:,} pairs + top {args.top}/profile + top {args.top_per_posting}/posting", t_rank),
                       (f"explain + store {run.n_kept:,} kept pairs", t_store),
                       ("jobfit match --profiles (all of it, again)", t_match)):
        print(f"{name:<44}{secs:>9.2f}")
    print(f"pairs/second (scoring and ranking): {pairs / t_rank:,.0f}; whole match: {pairs / t_match:,.0f}")
    print(f"kept: {kept[0]:,} rows ({kept[1]:,} in a profile's top {args.top}, {kept[2]:,} in a posting's top {args.top_per_posting}); "
          f"res.fit = {res.fit}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          f"(extraction workers: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
