"""Profiles from what people already have: a JSON Resume file, or a résumé in .txt/.md/.pdf/.docx.

A JSON Resume (jsonresume.org) is read as a profile as it is; the mapping is in README
"Profiles". A résumé document becomes a *draft* profile: the same spaCy extractor that reads
postings reads the résumé, and every field of the draft says which line it came from, because a
draft the user cannot check is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .taxonomy import Taxonomy

RESUME_SUFFIXES = (".txt", ".md", ".pdf", ".docx")


class ResumeError(Exception):
    """The résumé cannot be read (format, damaged file); the message says which and why."""


# --- dates ---------------------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


def _iso_month(value: Any) -> tuple[int, int] | None:
    """'2019-03-01', '2019-03' or '2019' -> (year, month); None when it is not a date."""
    m = re.match(r"^\s*(\d{4})(?:-(\d{1,2}))?", str(value or ""))
    if not m:
        return None
    month = int(m.group(2) or 1)
    return (int(m.group(1)), month if 1 <= month <= 12 else 1)


def _next_month(ym: tuple[int, int]) -> tuple[int, int]:
    """An end month is worked in full: a job ending in February ends where March begins."""
    return (ym[0] + 1, 1) if ym[1] == 12 else (ym[0], ym[1] + 1)


def _months(start: tuple[int, int], end: tuple[int, int]) -> int:
    return (end[0] - start[0]) * 12 + (end[1] - start[1])


def merged_years(spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> float:
    """Years covered by date spans, overlaps counted once (two jobs at once are not two years)."""
    points = sorted((s[0] * 12 + s[1], e[0] * 12 + e[1]) for s, e in spans if _months(s, e) > 0)
    total, cur_s, cur_e = 0, None, None
    for s, e in points:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return round(total / 12, 1)


def _area_of(text: str, tax: Taxonomy) -> list[str]:
    low = f" {text.lower()} "
    areas = []
    for area, words in ((tax.fit.get("experience_areas") or {}).get("resume_keywords") or {}).items():
        if any(re.search(rf"(?<![a-z]){re.escape(w.lower())}(?![a-z])", low) for w in words):
            areas.append(area)
    return areas


# --- JSON Resume ---------------------------------------------------------------------------


def _credentials_in(text: str, tax: Taxonomy) -> list[str]:
    """Credential ids named in a free-text certificate line ("AAPC CPC (2019)", "Certified Professional Coder")."""
    term = tax.lookup(text, ("credential",))
    if term is not None:
        return [term.id]
    found = []
    low = text.lower()
    for t in tax.terms["credential"].values():
        if t.id.startswith("ANY_"):
            continue
        if any(re.search(rf"(?<![A-Za-z0-9-]){re.escape(a)}(?![A-Za-z0-9-])", text) for a in t.acronyms) or \
                any(a.lower() in low for a in (t.name, *t.aliases) if len(a) > 6):
            found.append(t.id)
    return found


def profile_fields_from_json_resume(data: dict[str, Any], tax: Taxonomy, today: date) -> tuple[dict[str, Any], list[str]]:
    """Map a JSON Resume onto profile fields (README "Profiles" has the table). Returns the fields
    and notes on what could not be mapped."""
    notes: list[str] = []
    basics = data.get("basics") if isinstance(data.get("basics"), dict) else {}
    fields: dict[str, Any] = {"name": basics.get("name") or None, "credentials": [], "skills": [], "code_systems": []}
    loc = basics.get("location") if isinstance(basics.get("location"), dict) else {}
    place = ", ".join(str(loc[k]) for k in ("city", "region") if loc.get(k))
    if place:
        fields["locations"] = [place]
    for i, cert in enumerate(data.get("certificates") or []):
        name = cert.get("name") if isinstance(cert, dict) else cert
        ids = _credentials_in(str(name or ""), tax)
        if not ids:
            fields["credentials"].append(str(name))  # left for the profile reader to warn about, with a suggestion
        for cid in ids:
            status = "in_progress" if re.search(r"in progress|pursuing|expected|candidate", str(name), re.I) else "active"
            fields["credentials"].append({"id": cid, "status": status})
    for i, sk in enumerate(data.get("skills") or []):
        names = [sk.get("name"), *(sk.get("keywords") or [])] if isinstance(sk, dict) else [sk]
        for n in names:
            if not n:
                continue
            n = str(n)
            if tax.lookup(n, ("code_system",)):
                fields["code_systems"].append(n)
            elif tax.lookup(n, ("skill",)):
                fields["skills"].append(n)
            elif tax.lookup(n, ("credential",)):
                fields["credentials"].append(n)
            elif isinstance(sk, dict) and n == sk.get("name") and sk.get("keywords"):
                continue  # a group heading ("Coding") whose keywords carry the skills
            else:
                fields["skills"].append(n)  # warned about (with the nearest entry) by the profile reader
    spans, by_area = [], {}
    for i, job in enumerate(data.get("work") or []):
        if not isinstance(job, dict):
            continue
        start = _iso_month(job.get("startDate"))
        end_m = _iso_month(job.get("endDate")) if job.get("endDate") else None
        end = _next_month(end_m) if end_m else (today.year, today.month)
        if start is None:
            notes.append(f"work[{i}] ({job.get('position') or job.get('name') or '?'}): no usable startDate, not counted in years")
            continue
        spans.append((start, end))
        words = " ".join(str(x) for x in (job.get("position"), job.get("summary"), *(job.get("highlights") or [])) if x)
        for area in _area_of(words, tax):
            by_area.setdefault(area, []).append((start, end))
    if spans:
        fields["experience_years"] = merged_years(spans)
        fields["experience"] = {a: merged_years(s) for a, s in sorted(by_area.items())}
    best, best_rank = None, -1
    for edu in data.get("education") or []:
        if not isinstance(edu, dict):
            continue
        level = _education_level(" ".join(str(edu.get(k) or "") for k in ("studyType", "area")), tax)
        rank = int(tax.terms["education"][level].extra.get("rank") or 0) if level else -1
        if level and rank > best_rank:
            best, best_rank = level, rank
    if best:
        fields["education"] = best
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    ext = data.get("jobfit") or meta.get("jobfit")
    if isinstance(ext, dict):  # what a résumé has no field for: desired pay, arrangement, roles
        for key in ("desired_pay", "work_arrangement", "roles_of_interest", "locations", "experience_years", "experience"):
            if key in ext:
                fields[key] = ext[key]
    return fields, notes


def _education_level(text: str, tax: Taxonomy) -> str | None:
    term = tax.lookup(text, ("education",))
    if term is not None:
        return term.id
    low = text.lower()
    best, best_rank = None, -1
    for t in tax.terms["education"].values():
        forms = [t.name, *t.aliases, t.id.replace("_", " ")]
        if any(re.search(rf"(?<![a-z]){re.escape(f.lower())}", low) for f in forms if f):
            rank = int(t.extra.get("rank") or 0)
            if rank > best_rank:
                best, best_rank = t.id, rank
    return best


# --- résumé documents -----------------------------------------------------------------------


def resume_text(path: str | Path) -> str:
    """Plain text of a résumé: .txt/.md as they are, .pdf with pypdf, .docx with python-docx."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in RESUME_SUFFIXES:
        raise ResumeError(f"{p}: résumés are read from {', '.join(RESUME_SUFFIXES)}; got {suffix or 'no extension'}")
    try:
        if suffix in (".txt", ".md"):
            data = p.read_bytes()
            from .ingest import decode

            return decode(data)[0]
        if suffix == ".pdf":
            from pypdf import PdfReader
            from pypdf.errors import PdfReadError

            try:
                reader = PdfReader(str(p))
                pages = [page.extract_text() or "" for page in reader.pages]
            except (PdfReadError, ValueError, KeyError) as exc:
                raise ResumeError(f"{p}: not a readable PDF: {exc}") from exc
            text = "\n".join(pages)
            if not text.strip():
                raise ResumeError(f"{p}: the PDF has no text layer (a scan?); save it as text or .docx and try again")
            return text
        import zipfile

        import docx  # python-docx
        from docx.opc.exceptions import PackageNotFoundError

        try:
            d = docx.Document(str(p))
        except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
            raise ResumeError(f"{p}: not a readable .docx file: {exc}") from exc
        lines = [para.text for para in d.paragraphs]
        for table in d.tables:
            for row in table.rows:
                lines.append(" | ".join(cell.text for cell in row.cells))
        return "\n".join(lines)
    except OSError as exc:
        raise ResumeError(f"{p}: cannot read: {exc.strerror or exc}") from exc


@dataclass
class Found:
    field: str
    value: str
    line: int
    text: str


@dataclass
class Draft:
    profile: dict[str, Any]
    found: list[Found] = field(default_factory=list)


_RANGE = re.compile(
    r"(?P<sm>(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+)?(?P<sy>(?:19|20)\d\d)\s*(?:-|–|—|to)\s*"
    r"(?:(?P<em>(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+)?(?P<ey>(?:19|20)\d\d)|(?P<now>present|current|now|today))",
    re.I)


def draft_from_text(text: str, extraction: dict[str, Any], tax: Taxonomy, today: date) -> Draft:
    """Turn an extraction of résumé text into a draft profile, noting the line of each finding."""
    starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def line_of(offset: int) -> int:
        lo, hi = 0, len(starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    lines = text.splitlines()
    found: list[Found] = []
    prof: dict[str, Any] = {}
    name = next((ln.strip().lstrip("#").strip() for ln in lines if ln.strip()), "")
    if name and len(name) <= 60 and not re.search(r"\d|@", name):
        prof["name"] = name
        found.append(Found("name", name, 1 + next(i for i, ln in enumerate(lines) if ln.strip()), name))
    creds: list[Any] = []
    for c in extraction.get("certifications", []):
        if c["requirement"] == "not_required" or c["id"] in creds or c["id"].startswith("ANY_"):
            continue
        sentence = c.get("sentence") or c["text"]
        pending = re.search(r"in progress|pursuing|preparing for|studying for|working towards|expected", sentence, re.I)
        creds.append({"id": c["id"], "status": "in_progress"} if pending else c["id"])
        found.append(Found("credentials", c["id"] + (" (in progress)" if pending else ""), line_of(c["start"]), c["text"]))
    for key, items in (("code_systems", extraction.get("code_systems", [])), ("skills", extraction.get("skills", []))):
        vals: list[str] = []
        for it in items:
            if it["requirement"] == "not_required" or it["id"] in vals:
                continue
            if key == "skills" and it.get("category") == "education":
                continue
            vals.append(it["id"])
            found.append(Found(key, it["id"], line_of(it["start"]), it["text"]))
        if vals:
            prof[key] = vals
    if creds:
        prof["credentials"] = creds
    spans, by_area = [], {}
    for m in _RANGE.finditer(text):
        sm = _MONTHS.get((m.group("sm") or "jan")[:3].lower(), 1)
        start = (int(m.group("sy")), sm)
        if m.group("now"):
            end = (today.year, today.month)
        else:
            end = _next_month((int(m.group("ey")), _MONTHS.get((m.group("em") or "dec")[:3].lower(), 12)))
        if _months(start, end) <= 0:
            continue
        spans.append((start, end))
        ln = line_of(m.start())
        block = " ".join(lines[ln - 1: ln + 1])  # the job title sits on its dates' line, its duties below
        areas = _area_of(block, tax)
        for a in areas:
            by_area.setdefault(a, []).append((start, end))
        found.append(Found("experience", f"{m.group(0).strip()}" + (f" ({', '.join(areas)})" if areas else ""), ln, lines[ln - 1].strip()))
    if spans:
        prof["experience_years"] = merged_years(spans)
        if by_area:
            prof["experience"] = {a: merged_years(s) for a, s in sorted(by_area.items())}
    elif extraction.get("experience_years_min") is not None:
        prof["experience_years"] = extraction["experience_years_min"]
        found.append(Found("experience_years", str(extraction["experience_years_min"]), 0, "stated years (no date ranges found)"))
    if extraction.get("education_min"):
        prof["education"] = extraction["education_min"]
        found.append(Found("education", extraction["education_min"], 0, "highest level the extractor found"))
    prof.setdefault("desired_pay", None)
    prof.setdefault("work_arrangement", [])
    prof.setdefault("roles_of_interest", [])
    return Draft(prof, found)
