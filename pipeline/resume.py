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
    """'2019-03-01', '2019-03' or '2019' -> (year, month); None when it is not such a date."""
    m = re.fullmatch(r"\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*", str(value or ""))
    if not m:
        return None
    month = int(m.group(2) or 1)
    if not 1 <= month <= 12 or (m.group(3) and not 1 <= int(m.group(3)) <= 31):
        return None
    return (int(m.group(1)), month)


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
    for i, cert in enumerate(_listed(data, "certificates", notes)):
        name = cert.get("name") if isinstance(cert, dict) else cert
        ids = _credentials_in(str(name or ""), tax)
        if not ids:
            fields["credentials"].append(str(name))  # left for the profile reader to warn about, with a suggestion
        for cid in ids:
            fields["credentials"].append({"id": cid, "status": credential_status(str(name))})
    for i, sk in enumerate(_listed(data, "skills", notes)):
        if isinstance(sk, dict):
            kws = sk.get("keywords") or []
            names = [sk.get("name"), *(kws if isinstance(kws, list) else [kws])]
        else:
            names = [sk]
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
    now = (today.year, today.month)
    for i, job in enumerate(_listed(data, "work", notes)):
        if not isinstance(job, dict):
            notes.append(f"work[{i}] is not an object, skipped")
            continue
        label = f"work[{i}] ({job.get('position') or job.get('name') or '?'})"
        start = _iso_month(job.get("startDate"))
        end_m = _iso_month(job.get("endDate")) if job.get("endDate") else None
        if start is None:
            notes.append(f"{label}: startDate {job.get('startDate')!r} is not a date (YYYY-MM-DD), not counted in years")
            continue
        if job.get("endDate") and end_m is None:
            notes.append(f"{label}: endDate {job.get('endDate')!r} is not a date (YYYY-MM-DD), not counted in years")
            continue
        end = min(_next_month(end_m), now) if end_m else now
        if start > now:
            notes.append(f"{label}: starts in the future ({job.get('startDate')}), not counted in years")
            continue
        if _months(start, end) <= 0:
            notes.append(f"{label}: endDate is before startDate, not counted in years")
            continue
        spans.append((start, end))
        highlights = job.get("highlights") or []
        highlights = highlights if isinstance(highlights, list) else [highlights]
        words = " ".join(str(x) for x in (job.get("position"), job.get("summary"), *highlights) if x)
        for area in _area_of(words, tax):
            by_area.setdefault(area, []).append((start, end))
        for kind, tid in terms_in_text(" ".join(str(x) for x in (job.get("summary"), *highlights) if x), tax):
            fields["code_systems" if kind == "code_system" else "skills"].append(tid)
    if spans:
        fields["experience_years"] = merged_years(spans)
        fields["experience"] = {a: merged_years(s) for a, s in sorted(by_area.items())}
    best, best_rank = None, -1
    for edu in _listed(data, "education", notes):
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


def _listed(data: dict[str, Any], key: str, notes: list[str]) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        notes.append(f"{key} should be a list (JSON Resume schema), got {type(value).__name__}; skipped")
        return []
    return value


def credential_status(text: str) -> str:
    """The status a person's own words give a credential ("CPC (expired 2018)", "RHIT, expected 2026")."""
    if re.search(r"\b(expired|lapsed|inactive|retired)\b", text, re.I):
        return "expired"
    if re.search(r"in progress|pursuing|preparing for|studying for|working towards|expected|candidate|exam scheduled", text, re.I):
        return "in_progress"
    return "active"


_TERM_RE: dict[str, tuple[re.Pattern[str], re.Pattern[str] | None, dict[str, tuple[str, str]]]] = {}


def terms_in_text(text: str, tax: Taxonomy) -> list[tuple[str, str]]:
    """Skills and code systems named in free text (a JSON Resume job's summary and highlights),
    found by their taxonomy names, aliases (any case) and acronyms (exact case), in text order."""
    if tax.version not in _TERM_RE:
        forms: dict[str, tuple[str, str]] = {}
        acr: dict[str, tuple[str, str]] = {}
        unscored = set(tax.fit.get("unscored_skill_categories") or ())  # the skills fit scores, no others
        for kind in ("code_system", "skill"):
            for t in tax.terms[kind].values():
                if kind == "skill" and t.category in unscored:
                    continue
                for a in (t.name, *t.aliases):
                    if len(a) > 3:
                        forms.setdefault(a.lower(), (kind, t.id))
                for a in t.acronyms:
                    acr.setdefault(a, (kind, t.id))
        low = re.compile(r"(?<![\w/-])(" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + r")(?![\w/-])")
        exact = re.compile(r"(?<![\w/-])(" + "|".join(re.escape(f) for f in sorted(acr, key=len, reverse=True)) + r")(?![\w/-])") if acr else None
        table = {**{k: v for k, v in forms.items()}, **{"\0" + k: v for k, v in acr.items()}}
        _TERM_RE[tax.version] = (low, exact, table)
    low, exact, table = _TERM_RE[tax.version]
    hits = [(m.start(), table[m.group(1)]) for m in low.finditer(text.lower())]
    if exact is not None:
        hits += [(m.start(), table["\0" + m.group(1)]) for m in exact.finditer(text)]
    out: list[tuple[str, str]] = []
    for _, hit in sorted(hits):
        if hit not in out:
            out.append(hit)
    return out


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
            if b"\x00" in data[:8192]:
                raise ResumeError(f"{p}: not a text file (binary data); save the résumé as text, .pdf or .docx")
            from .ingest import decode

            text = decode(data)[0]
            if not text.strip():
                raise ResumeError(f"{p}: the file is empty")
            return text
        if suffix == ".pdf":
            import logging

            from pypdf import PdfReader
            from pypdf.errors import PdfReadError

            logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its warnings are not the user's business; errors are ours

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


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+|(?:0?[1-9]|1[0-2])/"
_RANGE = re.compile(
    rf"(?P<sm>{_MONTH})?(?P<sy>(?:19|20)\d\d)\s*(?:-|–|—|to)\s*"
    rf"(?:(?P<em>{_MONTH})?(?P<ey>(?:19|20)\d\d)|(?P<now>present|current|now|today))",
    re.I)
_PLACE = re.compile(r"\b([A-Z][A-Za-z .'-]+,\s*(?:[A-Z]{2}|[A-Z][a-z]+))\b")


def _month_of(token: str | None, default: int) -> int:
    if not token:
        return default
    t = token.strip().rstrip("/").rstrip(".").lower()
    return int(t) if t.isdigit() else _MONTHS.get(t[:3], default)


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
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None:
        # "# **Maria José O'Neil**, CPC, CCS" -> "Maria José O'Neil": markup off, credentials after the comma off
        name = re.sub(r"[#*_`>]+", "", lines[first]).split(",")[0].split("|")[0].strip()
        if name and len(name) <= 60 and not re.search(r"\d|@", name):
            prof["name"] = name
            found.append(Found("name", name, first + 1, lines[first].strip()))
    for i, ln in enumerate(lines[:6]):  # the contact lines under the name
        m = _PLACE.search(ln)
        if m and not _RANGE.search(ln):
            prof["locations"] = [m.group(1).strip()]
            found.append(Found("locations", m.group(1).strip(), i + 1, ln.strip()))
            break
    creds: list[Any] = []
    for c in extraction.get("certifications", []):
        if c["requirement"] == "not_required" or c["id"] in creds or c["id"].startswith("ANY_"):
            continue
        # the clause around the mention: "CPC (expired 2018); RHIT, expected 2026" gives each its own
        lo = max(text.rfind(sep, 0, c["start"]) for sep in (";", ",", "|", "•", "\n"))
        his = [h for h in (text.find(sep, c["end"]) for sep in (";", ",", "|", "•", "\n")) if h >= 0]
        status = credential_status(text[lo + 1: min(his) if his else len(text)])
        creds.append(c["id"] if status == "active" else {"id": c["id"], "status": status})
        found.append(Found("credentials", c["id"] + ("" if status == "active" else f" ({status.replace('_', ' ')})"),
                           line_of(c["start"]), c["text"]))
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
        start = (int(m.group("sy")), _month_of(m.group("sm"), 1))
        if m.group("now"):
            end = (today.year, today.month)
        else:
            end = _next_month((int(m.group("ey")), _month_of(m.group("em"), 12)))
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
