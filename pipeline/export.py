"""The stable JSON contract, assembled from the DuckDB tables.

``jobfit extract --format json`` and every report read postings through :func:`records`, so the
shape documented in ``pipeline/schema/extraction.schema.json`` is produced in exactly one place.
Keys and list order are fixed, so the same input always gives byte-identical output.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb

SCHEMA_PATH = Path(__file__).with_name("schema") / "extraction.schema.json"


def _num(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


PAGE = 2000


def records(con: duckdb.DuckDBPyConnection, posting_ids: Sequence[str] | None = None, *, order: str = "source",
            page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Contract records for the given postings (all extracted postings when None), streamed a page
    of postings at a time: only the ordered ids are listed up front, so an export of 100,000
    postings holds one page of records, not all of them (the report stage peaked at 1.57 GB when
    it gathered every record first)."""
    if posting_ids is not None and not posting_ids:
        return
    where = "" if posting_ids is None else "WHERE p.posting_id IN (SELECT unnest($ids))"
    params: dict[str, Any] = {} if posting_ids is None else {"ids": list(posting_ids)}
    ids = [r[0] for r in con.execute(
        f"""SELECT p.posting_id FROM postings p JOIN extractions e USING (posting_id) {where}
            ORDER BY p.{'source' if order == 'source' else 'posting_id'}, p.posting_id""", params).fetchall()]
    for i in range(0, len(ids), page):
        yield from _page(con, ids[i : i + page])


def _page(con: duckdb.DuckDBPyConnection, ids: list[str]) -> Iterator[dict[str, Any]]:
    rows = {r[0]: r for r in con.execute(
        """SELECT p.posting_id, p.source, p.title, p.company, p.location, e.experience_years_min, e.education_min,
                  e.salary_min, e.salary_max, e.salary_period, e.salary_currency, e.annual_min, e.annual_max, e.salary_text,
                  e.work_arrangement, e.employment_type, r.role_id, r.score, r.alternatives, r.evidence
           FROM postings p JOIN extractions e USING (posting_id) LEFT JOIN posting_roles r USING (posting_id)
           WHERE p.posting_id IN (SELECT unnest($ids))""",
        {"ids": ids},
    ).fetchall()}
    base = [rows[i] for i in ids if i in rows]
    ids = [b[0] for b in base]
    items: dict[str, list[tuple]] = defaultdict(list)
    for row in con.execute(
        """SELECT posting_id, kind, item_id, requirement, any_of, text, start_char, end_char, sentence, category, issuer, family
           FROM extraction_items WHERE posting_id IN (SELECT unnest(?)) ORDER BY posting_id, start_char, kind, item_id""",
        [ids],
    ).fetchall():
        items[row[0]].append(row)
    codes: dict[str, list[tuple]] = defaultdict(list)
    for row in con.execute(
        """SELECT posting_id, system, code, valid, text, start_char, end_char FROM extraction_codes
           WHERE posting_id IN (SELECT unnest(?)) ORDER BY posting_id, start_char, system, code""",
        [ids],
    ).fetchall():
        codes[row[0]].append(row)
    for (pid, source, title, company, location, years, edu, smin, smax, speriod, scur, amin, amax, stext,
         arrangement, etype, role_id, rscore, ralts, revidence) in base:
        creds, systems, skills, settings = [], [], [], []
        for _, kind, item_id, req, any_of, text, start, end, sentence, category, issuer, family in items[pid]:
            if kind == "credential":
                creds.append({"id": item_id, "issuer": issuer or "", "requirement": req, "text": text, "start": start, "end": end,
                              "any_of": list(any_of) if any_of else None, "sentence": sentence})
            elif kind == "code_system":
                systems.append({"id": item_id, "family": family, "requirement": req, "text": text, "start": start, "end": end, "sentence": sentence})
            elif kind == "skill":
                skills.append({"id": item_id, "category": category or "", "requirement": req, "text": text, "start": start, "end": end, "sentence": sentence})
                if category == "work_setting":
                    settings.append(item_id)
        salary = None
        if speriod is not None:
            salary = {"min": _num(smin), "max": _num(smax), "period": speriod, "currency": scur,
                      "annual_min": _num(amin), "annual_max": _num(amax), "text": stext}
        yield {
            "posting_id": pid,
            "source": source,
            "title": title,
            "company": company,
            "location": location,
            "role": {
                "id": role_id or "none",
                "score": float(rscore or 0.0),
                "alternatives": json.loads(ralts) if ralts else [],
                "evidence": json.loads(revidence) if revidence else [],
            },
            "certifications": creds,
            "code_systems": systems,
            "codes": [{"system": s, "code": c, "valid": v, "text": t, "start": a, "end": b} for _, s, c, v, t, a, b in codes[pid]],
            "skills": skills,
            "experience_years_min": _num(years),
            "education_min": edu,
            "salary": salary,
            "work_arrangement": arrangement,
            "employment_type": etype,
            "work_settings": sorted(set(settings)),
        }


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
