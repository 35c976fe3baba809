"""Reports from the store: the market report, one report per profile, and table exports.

Posting text is hostile: HTML goes through Jinja2 autoescaping (evidence highlighting escapes
before it marks), Markdown cells are escaped, CSV cells a spreadsheet would run as a formula are
neutralised, file names come from :func:`safe_name`. A profile's report is built only from that
profile's rows, so nothing of one person reaches another person's report. Files are written to
a temporary name and renamed, so a report on disk is always whole; no timestamps, so the same
database gives byte-identical reports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import duckdb
from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape

from . import export
from .config import safe_name

FORMATS = ("html", "md", "csv", "json", "parquet")
DEFAULT_FORMATS = ("html", "md", "csv", "json")
PARQUET_TABLES = ("postings", "extractions", "extraction_items", "extraction_codes", "posting_roles", "profiles", "matches", "runs", "rejects")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = md_escape
    env.filters["highlight"] = highlight
    env.filters["money"] = money
    env.filters["basename"] = lambda v: Path(str(v or "")).name or str(v or "")
    return env


def md_escape(value: Any) -> str:
    text = "" if value is None else str(value)
    text = re.sub(r"[\r\n]+", " ", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def highlight(sentence: Any, text: Any) -> Markup:
    """The evidence sentence with the matched words marked; both escaped first."""
    s, t = "" if sentence is None else str(sentence), "" if text is None else str(text)
    i = s.lower().find(t.lower()) if t else -1
    if i < 0:
        return Markup(escape(s))
    return Markup(escape(s[:i]) + Markup("<mark>") + escape(s[i:i + len(t)]) + Markup("</mark>") + escape(s[i + len(t):]))


def money(v: Any) -> str:
    return "" if v is None else f"{float(v):,.0f}"


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA):
        return "'" + text
    return text


def atomic_write(path: Path, data: str | bytes | Iterable[str]) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: a reader never sees half
    a report. ``data`` may be an iterable of strings, written as it comes (exports of every posting
    stream through here rather than being built as one string first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp", dir=path.parent)
    try:
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                if isinstance(data, str):
                    fh.write(data)
                else:
                    for piece in data:
                        fh.write(piece)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; reports are for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- market summary ------------------------------------------------------------------------


def market(con: duckdb.DuckDBPyConnection, top: int = 10) -> dict[str, Any]:
    """Demand, pay and arrangement over the billing/coding/HIM postings in the store."""
    n_all, n_target = con.execute("SELECT count(*), count(*) FILTER (WHERE coalesce(is_target, false)) FROM extractions "
                                  "LEFT JOIN posting_roles USING (posting_id)").fetchone()
    roles = con.execute("SELECT role_id, count(*) FROM posting_roles WHERE is_target GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    demand: dict[str, list[tuple[str, int, int]]] = {}
    for label, cond in (("credentials", "i.kind = 'credential'"), ("code systems", "i.kind = 'code_system'"),
                        ("software", "i.kind = 'skill' AND i.category = 'software'"),
                        ("skills", "i.kind = 'skill' AND coalesce(i.category, '') NOT IN ('software', 'soft_skill', 'education', 'work_setting')")):
        demand[label] = [tuple(r) for r in con.execute(f"""
            SELECT i.item_id, count(DISTINCT i.posting_id) FILTER (WHERE i.requirement = 'required') AS req,
                   count(DISTINCT i.posting_id) AS total
            FROM extraction_items i JOIN posting_roles r USING (posting_id)
            WHERE r.is_target AND i.requirement IN ('required', 'preferred', 'mentioned') AND {cond}
            GROUP BY 1 ORDER BY total DESC, req DESC, 1 LIMIT {int(top)}""").fetchall()]
    by_role = {}
    for role_id, item_id, kind, n in con.execute("""
        SELECT role_id, item_id, kind, n FROM (
          SELECT r.role_id, i.item_id, i.kind, count(DISTINCT i.posting_id) AS n,
                 row_number() OVER (PARTITION BY r.role_id, i.kind ORDER BY count(DISTINCT i.posting_id) DESC, i.item_id) AS k
          FROM extraction_items i JOIN posting_roles r USING (posting_id)
          WHERE r.is_target AND i.requirement IN ('required', 'preferred') GROUP BY 1, 2, 3)
        WHERE k <= 5 ORDER BY role_id, kind, n DESC, item_id""").fetchall():
        by_role.setdefault(role_id, {}).setdefault(kind, []).append((item_id, n))
    pay = []
    for role_id, cur, n, lo, p25, med, p75, hi, seed in con.execute("""
        SELECT r.role_id, e.salary_currency, count(*), min(e.annual_min), quantile_cont((e.annual_min + e.annual_max) / 2, 0.25),
               median((e.annual_min + e.annual_max) / 2), quantile_cont((e.annual_min + e.annual_max) / 2, 0.75), max(e.annual_max),
               any_value(t.pay)
        FROM extractions e JOIN posting_roles r USING (posting_id) JOIN tax_roles t ON t.role_id = r.role_id
        WHERE r.is_target AND e.annual_min IS NOT NULL AND e.annual_max IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2""").fetchall():
        pay.append({"role": role_id, "currency": cur, "n": n, "min": lo, "p25": p25, "median": med, "p75": p75, "max": hi,
                    "seed": _seed_pay([e for e in (json.loads(seed) if seed else []) if e.get("currency") == cur])})
    seeds = {rid: _seed_pay(json.loads(p) if p else []) for rid, p in con.execute("SELECT role_id, pay FROM tax_roles ORDER BY 1").fetchall()}
    arrangement = con.execute("""SELECT coalesce(e.work_arrangement, 'not stated'), count(*) FROM extractions e JOIN posting_roles r USING (posting_id)
                                 WHERE r.is_target GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    return {"n_postings": n_all, "n_target": n_target, "roles": roles, "demand": demand, "by_role": by_role, "pay": pay,
            "seed_pay": seeds, "arrangement": arrangement}


def _seed_pay(entries: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in entries:
        amount = f"{e['amount']:,}" if e.get("amount") is not None else f"{e.get('min', 0):,}–{e.get('max', 0):,}"
        out.append(f"{e.get('currency', '')} {amount}/{e.get('period', 'year')} ({e.get('source', '')})")
    return out


def profile_summary(con: duckdb.DuckDBPyConnection, profile_id: str) -> dict[str, Any]:
    """Band counts, score histogram and the commonest blockers, from this profile's rows only."""
    bands = con.execute("SELECT band, count(*) FROM matches WHERE profile_id = ? GROUP BY 1 ORDER BY min(score) DESC", [profile_id]).fetchall()
    hist = dict(con.execute("SELECT least(9, floor(score / 10))::INTEGER, count(*) FROM matches WHERE profile_id = ? GROUP BY 1",
                            [profile_id]).fetchall())
    blockers: Counter[str] = Counter()
    gaps: Counter[str] = Counter()
    for b, m in con.execute("SELECT blockers, missing FROM matches WHERE profile_id = ?", [profile_id]).fetchall():
        for item in json.loads(b or "[]"):
            if item["kind"] != "role":
                blockers[f"{item['kind']} {item['id']}"] += 1
        for item in json.loads(m or "[]"):
            if item.get("requirement") == "required" and item["kind"] in ("skill", "code_system", "experience", "education"):
                gaps[f"{item['kind']} {item['id']}"] += 1
    return {"bands": bands, "histogram": [(f"{i * 10}–{i * 10 + 9 if i < 9 else 100}", hist.get(i, 0)) for i in range(10)],
            "blockers": blockers.most_common(8), "gaps": gaps.most_common(8)}


# --- charts (inline SVG data; the template draws them) -------------------------------------


def bar_chart(pairs: Sequence[tuple[str, int]], width: int = 440, label_w: int = 150) -> dict[str, Any]:
    top = max((n for _, n in pairs), default=1) or 1
    return {"bars": [{"label": k, "n": n, "w": round(n / top * (width - label_w - 40), 1), "y": i * 22} for i, (k, n) in enumerate(pairs)],
            "height": 22 * len(pairs) + 4, "width": width, "label_w": label_w}


def range_chart(pay: list[dict[str, Any]], width: int = 640, label_w: int = 200) -> dict[str, Any]:
    rows = [p for p in pay if p["max"]]
    hi = max((p["max"] for p in rows), default=1) or 1
    scale = (width - label_w - 20) / hi

    def x(v: float | None) -> float:
        return round(label_w + (v or 0) * scale, 1)

    return {"rows": [{"label": f"{p['role']} ({p['currency']}, n={p['n']})", "x_min": x(p["min"]), "x_max": x(p["max"]),
                      "x_p25": x(p["p25"]), "x_p75": x(p["p75"]), "x_med": x(p["median"]), "y": i * 26,
                      "title": f"min {p['min']:,.0f}, p25 {p['p25']:,.0f}, median {p['median']:,.0f}, p75 {p['p75']:,.0f}, max {p['max']:,.0f}"}
                     for i, p in enumerate(rows)],
            "height": 26 * len(rows) + 24, "width": width, "axis_max": f"{hi:,.0f}", "label_w": label_w}


# --- writing -------------------------------------------------------------------------------


def _version(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT value FROM meta WHERE key = 'taxonomy_version'").fetchone()
    return row[0] if row else "?"


def _profile(con: duckdb.DuckDBPyConnection, profile_id: str) -> dict[str, Any] | None:
    row = con.execute("SELECT name, data FROM profiles WHERE profile_id = ?", [profile_id]).fetchone()
    return {"profile_id": profile_id, "name": row[0], **json.loads(row[1])} if row else None


def _fits(con: duckdb.DuckDBPyConnection, profile_id: str) -> dict[str, dict[str, Any]]:
    out = {}
    for pid, score, band, met, missing, blockers, comps, rank in con.execute(
            "SELECT posting_id, score, band, met, missing, blockers, components, rank_in_profile FROM matches WHERE profile_id = ?",
            [profile_id]).fetchall():
        out[pid] = {"score": score, "band": band, "met": json.loads(met or "[]"), "missing": json.loads(missing or "[]"),
                    "blockers": json.loads(blockers or "[]"), "components": json.loads(comps or "{}"), "rank": rank}
    return out


def write_reports(con: duckdb.DuckDBPyConnection, out: str | Path, formats: Sequence[str] = DEFAULT_FORMATS,
                  profile_ids: Sequence[str] | str | None = ()) -> list[Path]:
    """The market report (``jobfit.*``: every target posting, no profile data) and, for each
    profile id, that profile's ranked report (``jobfit-<id>.*``: only the postings kept for it)."""
    out = Path(out)
    if isinstance(profile_ids, str):
        profile_ids = [profile_ids]
    if out.is_dir():  # temporary files of a report run that was killed before its rename
        for stale in out.glob(".jobfit*.tmp*"):
            stale.unlink(missing_ok=True)
    env = _env()
    generic = dict(con.execute("SELECT term_id, name FROM tax_terms WHERE kind = 'credential' AND term_id LIKE 'ANY\\_%' ESCAPE '\\'").fetchall())
    env.filters["cred"] = lambda cid: generic.get(cid, cid)  # "ANY_CODING_CERT" reads as its name
    mk = market(con)
    charts = {"credentials": bar_chart([(k, n) for k, _, n in mk["demand"]["credentials"]]),
              "code_systems": bar_chart([(k, n) for k, _, n in mk["demand"]["code systems"]]),
              "skills": bar_chart([(k, n) for k, _, n in mk["demand"]["skills"]], width=520, label_w=230),
              "software": bar_chart([(k, n) for k, _, n in mk["demand"]["software"]]),
              "pay": range_chart(mk["pay"])}
    common = {"market": mk, "charts": charts, "generated": f"taxonomy {_version(con)}"}
    written: list[Path] = []
    # the pages show target postings only; the CSV and JSON Lines exports stream every posting
    target_ids = [r[0] for r in con.execute(
        "SELECT posting_id FROM posting_roles WHERE role_id IS NOT NULL AND role_id <> 'none'").fetchall()]
    targets = [r for r in export.records(con, target_ids) if r["role"]["id"] != "none"]
    targets.sort(key=lambda r: (r["role"]["id"], r["source"], r["posting_id"]))
    written += _write_set(env, out, "jobfit", formats, {**common, "profile": None, "rows": targets,
                                                         "all_records": lambda: export.records(con)})
    for profile_id in profile_ids or ():
        prof = _profile(con, profile_id)
        if prof is None:
            continue
        fits = _fits(con, profile_id)
        rows = [{**rec, "fit": fits[rec["posting_id"]]} for rec in export.records(con, list(fits))]
        rows.sort(key=lambda r: (-r["fit"]["score"], r["posting_id"]))
        summary = profile_summary(con, profile_id)
        pcharts = {**charts, "fit": bar_chart(summary["histogram"], label_w=70),
                   "blockers": bar_chart(summary["blockers"], label_w=200)}
        written += _write_set(env, out, f"jobfit-{safe_name(profile_id)}", [f for f in formats if f != "parquet"],
                              {**common, "charts": pcharts, "profile": prof, "rows": rows, "all_records": lambda: iter(rows),
                               "psummary": summary})
    if "parquet" in formats:
        written += export_parquet(con, out / "tables")
    return written


def _write_set(env: Environment, out: Path, stem: str, formats: Sequence[str], data: dict[str, Any]) -> list[Path]:
    """``data["all_records"]`` is a function returning a fresh iterator of the records the exports
    hold: each export streams them from the store instead of keeping them all in memory."""
    written = []
    page = {k: v for k, v in data.items() if k != "all_records"}
    if "html" in formats:
        written.append(_write(out / f"{stem}.html", env.get_template("report.html.j2").generate(**page)))
    if "md" in formats:
        written.append(_write(out / f"{stem}.md", env.get_template("summary.md.j2").generate(**page)))
    if "csv" in formats:
        written.append(_write(out / f"{stem}.csv", _csv(data["all_records"]())))
    if "json" in formats:
        written.append(_write(out / f"{stem}.jsonl", (export.dumps(_public(r)) + "\n" for r in data["all_records"]())))
    return written


def export_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Every data table as Parquet, for pandas / Spark / a warehouse; written via temp + rename."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in PARQUET_TABLES:
        path = folder / f"{table}.parquet"
        tmp = folder / f".{table}.parquet.tmp"
        order = "ORDER BY ALL"
        con.execute(f"COPY (SELECT * FROM {table} {order}) TO '{_sql_str(tmp)}' (FORMAT parquet)")
        os.replace(tmp, path)
        written.append(path)
    return written


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "fit" or v is not None}


def _write(path: Path, text: str | Iterable[str]) -> Path:
    atomic_write(path, text)
    return path


def _csv(recs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The CSV export, a row at a time."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")

    def take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    w.writerow(["posting_id", "source", "title", "role", "role_score", "fit_score", "fit_band", "required_credentials",
                "preferred_credentials", "code_systems", "experience_years_min", "salary_min", "salary_max", "salary_period",
                "currency", "annual_min", "annual_max", "work_arrangement", "employment_type", "blockers"])
    yield take()
    for r in recs:
        sal = r["salary"] or {}
        fit = r.get("fit") or {}
        w.writerow([csv_cell(x) for x in [
            r["posting_id"], r["source"], r["title"], r["role"]["id"], r["role"]["score"], fit.get("score"), fit.get("band"),
            " ".join(c["id"] for c in r["certifications"] if c["requirement"] == "required"),
            " ".join(c["id"] for c in r["certifications"] if c["requirement"] == "preferred"),
            " ".join(s["id"] for s in r["code_systems"]), r["experience_years_min"], sal.get("min"), sal.get("max"),
            sal.get("period"), sal.get("currency"), sal.get("annual_min"), sal.get("annual_max"), r["work_arrangement"],
            r["employment_type"], "; ".join(b["id"] for b in fit.get("blockers", [])),
        ]])
        yield take()
