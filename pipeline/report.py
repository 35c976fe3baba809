"""Reports from the store: a self-contained HTML page, a Markdown summary, CSV and JSON exports.

Posting text is hostile: HTML goes through Jinja2 autoescaping, Markdown cells are escaped, CSV
cells that a spreadsheet would run as a formula are neutralised. Files are written to a temporary
name and renamed, so a report on disk is always whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from . import export
from .config import safe_name

FORMATS = ("html", "md", "csv", "json")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("pipeline", "templates"), autoescape=lambda name: bool(name) and name.endswith(".html.j2"), trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = md_escape
    return env


def md_escape(value: Any) -> str:
    text = "" if value is None else str(value)
    text = re.sub(r"[\r\n]+", " ", text)
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA):
        return "'" + text
    return text


def atomic_write(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; reports are for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def gather(con: duckdb.DuckDBPyConnection, profile_id: str | None = None) -> dict[str, Any]:
    recs = list(export.records(con))
    fits: dict[str, dict[str, Any]] = {}
    profile = None
    if profile_id:
        row = con.execute("SELECT name, data FROM profiles WHERE profile_id = ?", [profile_id]).fetchone()
        profile = {"profile_id": profile_id, "name": row[0], **json.loads(row[1])} if row else None
        for pid, score, band, met, missing, blockers in con.execute(
            "SELECT posting_id, score, band, met, missing, blockers FROM matches WHERE profile_id = ?", [profile_id]
        ).fetchall():
            fits[pid] = {"score": score, "band": band, "met": json.loads(met), "missing": json.loads(missing), "blockers": json.loads(blockers)}
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        r["fit"] = fits.get(r["posting_id"])
        by_role[r["role"]["id"]].append(r)
    for rows in by_role.values():
        rows.sort(key=lambda r: (-(r["fit"]["score"] if r["fit"] else 0), r["source"]))
    cred_demand = Counter(c["id"] for r in recs if r["role"]["id"] != "none" for c in r["certifications"] if c["requirement"] in ("required", "preferred"))
    sys_demand = Counter(s["id"] for r in recs if r["role"]["id"] != "none" for s in r["code_systems"])
    ranked = sorted(recs, key=lambda r: (-(r["fit"]["score"] if r["fit"] else 0), r["role"]["id"] == "none", r["source"]))
    return {
        "records": recs,
        "ranked": ranked,
        "by_role": dict(sorted(by_role.items(), key=lambda kv: (kv[0] == "none", kv[0]))),
        "profile": profile,
        "cred_demand": cred_demand.most_common(12),
        "sys_demand": sys_demand.most_common(12),
        "n_target": sum(1 for r in recs if r["role"]["id"] != "none"),
        # no wall-clock time: the same database gives byte-identical reports
        "generated": f"taxonomy {export_version(con)}",
    }


def export_version(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT value FROM meta WHERE key = 'taxonomy_version'").fetchone()
    return row[0] if row else "?"


def _bar_chart(pairs: list[tuple[str, int]], width: int = 420) -> dict[str, Any]:
    top = max((n for _, n in pairs), default=1) or 1
    return {"bars": [{"label": k, "n": n, "w": round(n / top * (width - 170), 1), "y": i * 22} for i, (k, n) in enumerate(pairs)],
            "height": 22 * len(pairs) + 4, "width": width}


def write_reports(con: duckdb.DuckDBPyConnection, out: str | Path, formats: Sequence[str] = FORMATS, profile_id: str | None = None) -> list[Path]:
    out = Path(out)
    if out.is_dir():  # temporary files of a report run that was killed before its rename
        for stale in out.glob(".jobfit*.tmp*"):
            stale.unlink(missing_ok=True)
    data = gather(con, profile_id)
    stem = f"jobfit-{safe_name(profile_id)}" if profile_id else "jobfit"
    written: list[Path] = []
    env = _env()
    if "html" in formats:
        html = env.get_template("report.html.j2").render(
            **data, cred_chart=_bar_chart(data["cred_demand"]), sys_chart=_bar_chart(data["sys_demand"])
        )
        written.append(_write(out / f"{stem}.html", html))
    if "md" in formats:
        written.append(_write(out / f"{stem}.md", env.get_template("summary.md.j2").render(**data)))
    if "csv" in formats:
        written.append(_write(out / f"{stem}.csv", _csv(data["ranked"])))
    if "json" in formats:
        written.append(_write(out / f"{stem}.jsonl", "".join(export.dumps(_public(r)) + "\n" for r in data["records"])))
    return written


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "fit" or v is not None}


def _write(path: Path, text: str) -> Path:
    atomic_write(path, text)
    return path


def _csv(recs: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["posting_id", "source", "title", "role", "role_score", "fit_score", "fit_band", "required_credentials",
                "preferred_credentials", "code_systems", "experience_years_min", "salary_min", "salary_max", "salary_period",
                "currency", "annual_min", "annual_max", "work_arrangement", "employment_type", "blockers"])
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
    return buf.getvalue()
