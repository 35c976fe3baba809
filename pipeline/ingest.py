"""Files in, postings out: plain text, Markdown, HTML, JSON, JSON Lines (optionally gzipped), CSV.

Anything wrong with one file or one record becomes a :class:`Reject` with a reason a person can
act on; the batch goes on. Text is decoded with a real detector (charset-normalizer) when it is not
UTF-8, and HTML is turned into text by inscriptis, which keeps headings and list items on lines of
their own — the extractor reads sections from that layout.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSON_SUFFIXES = {".json"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}
UNSUPPORTED_SUFFIXES = {".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".rtf", ".zip", ".png", ".jpg",
                        ".jpeg", ".gif", ".xml", ".parquet", ".duckdb", ".db", ".sqlite", ".exe", ".so", ".tar", ".7z"}
KNOWN_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES

TITLE_KEYS = ("title", "job_title", "jobtitle", "position", "position_title", "name")
TEXT_KEYS = ("description", "text", "body", "content", "job_description", "jobdescription", "desc", "posting")
ID_KEYS = ("id", "posting_id", "job_id", "jobid", "identifier")
META_KEYS = {
    "company": ("company", "employer", "hiring_organization", "organization"),
    "location": ("location", "job_location", "city"),
    "date_posted": ("date_posted", "posted_at", "dateposted", "date"),
    "url": ("url", "job_url", "link"),
}
# hyphen-like characters that are not the en/em dashes postings use between figures
_HYPHEN_REPLACEMENTS = (("\u2010", "-"), ("\u2011", "-"), ("\u2012", "-"), ("\u2212", "-"), ("\u00ad", ""))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")
# a run of spaces becomes one space: runs of two or more, and single odd spaces (a single " " stays)
_SPACES = re.compile(r"[ \u2000-\u200a\u202f\u205f\u3000]{2,}|[\u2000-\u200a\u202f\u205f\u3000]")
_BLANK_LINES = re.compile(r"\n{3,}")
MAX_DECOMPRESSED = 2 * 1024**3
_TAG = re.compile(r"<\s*/?\s*(p|div|br|li|ul|ol|h[1-6]|span|strong|b|i|em|table|tr|td|a|section|article|body|html)\b", re.I)


@dataclass
class Posting:
    posting_id: str
    source: str
    title: str | None
    text: str
    format: str
    meta: dict[str, Any] = field(default_factory=dict)
    encoding: str = "utf-8"

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update((self.title or "").encode("utf-8"))
        h.update(b"\0")
        h.update(self.text.encode("utf-8"))
        if self.meta.get("hints"):
            h.update(b"\0")
            h.update(json.dumps(self.meta["hints"], sort_keys=True).encode("utf-8"))
        return h.hexdigest()[:20]


@dataclass
class Reject:
    source: str
    record: int | None
    reason: str


@dataclass
class ReadOptions:
    """How to read inputs: the size limit, and a column mapping for CSV/JSON feeds whose field
    names jobfit does not know (``{"text": "body_html", "title": "job_name"}``)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    mapping: dict[str, str] = field(default_factory=dict)
    stdin: Any = None
    # only records numbered start <= n < end (end None: to the end) of a JSONL or CSV file: how one
    # big feed is split between workers (pipeline.engine_dask) with the same ids and record numbers
    records: tuple[int, int | None] | None = None
    processes: int = 1  # worker processes that parse the records of a large JSON Lines file


class IngestError(Exception):
    """A path the user gave does not exist: a usage mistake, reported before any work starts."""


def iter_files(paths: Iterable[str]) -> Iterator[str]:
    """Files under the given paths, directories walked recursively in a stable (sorted) order,
    hidden files and folders skipped, each file once however often it is named or linked."""
    seen: set[str] = set()
    for raw in paths:
        if raw == "-":
            yield raw
            continue
        p = Path(raw)
        if p.is_dir():
            children = (c for c in sorted(p.rglob("*")) if not any(part.startswith(".") for part in c.relative_to(p).parts))
        elif p.is_file():
            children = iter([p])
        else:
            raise IngestError(f"{raw}: no such file or directory")
        for child in children:
            if not child.is_file():
                continue
            real = os.path.realpath(child)
            if real in seen:
                continue
            seen.add(real)
            yield raw if child is p else str(child)


def read_postings(paths: Iterable[str], *, max_bytes: int = DEFAULT_MAX_BYTES, stdin: Any = None,
                  mapping: dict[str, str] | None = None) -> Iterator[Posting | Reject]:
    opts = ReadOptions(max_bytes, dict(mapping or {}), stdin)
    for path in iter_files(paths):
        yield from read_path(path, opts)


def read_path(path: str, opts: ReadOptions | None = None) -> Iterator[Posting | Reject]:
    opts = opts or ReadOptions()
    max_bytes = opts.max_bytes
    try:
        if path == "-":
            stream = opts.stdin if opts.stdin is not None else sys.stdin.buffer
            data = stream.read()
            if isinstance(data, str):
                data = data.encode("utf-8")
            name = "-"
            suffix = _sniff_suffix(data)
        else:
            p = Path(path)
            size = p.stat().st_size
            suffixes = [s.lower() for s in p.suffixes]
            gz = bool(suffixes) and suffixes[-1] == ".gz"
            suffix = (suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else ""))
            if not gz and size > max_bytes and suffix not in JSONL_SUFFIXES | CSV_SUFFIXES:
                yield Reject(path, None, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
                return
            if suffix in JSONL_SUFFIXES and opts.records is None:  # one record a line: streamed, never whole in memory
                yield from _stream_jsonl(path, gz, opts)
                return
            if gz:
                with gzip.open(p, "rb") as fh:
                    data = fh.read(MAX_DECOMPRESSED + 1)
                if len(data) > MAX_DECOMPRESSED:
                    yield Reject(path, None, f"decompresses to over {MAX_DECOMPRESSED:,} bytes; split the file")
                    return
            else:
                data = p.read_bytes()
            name = path
            if suffix in UNSUPPORTED_SUFFIXES:
                yield Reject(path, None, f"unsupported file type {suffix} (convert it to text, HTML, JSON or CSV)")
                return
            if suffix not in KNOWN_SUFFIXES:
                suffix = _sniff_suffix(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield Reject(path, None, f"cannot read file: {exc.__class__.__name__}: {exc}")
        return
    if not data.strip():
        yield Reject(name, None, "empty file")
        return
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(name, data, opts)
        return
    if suffix in CSV_SUFFIXES:
        yield from _read_csv(name, data, suffix, opts)
        return
    if len(data) > max_bytes:
        yield Reject(name, None, f"input is {len(data):,} bytes, over the {max_bytes:,}-byte limit")
        return
    text, encoding, problem = decode(data)
    if problem:
        yield Reject(name, None, problem)
        return
    if suffix in JSON_SUFFIXES:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Reject(name, None, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
            return
        jobs = jobpostings_in_jsonld(obj)
        objs = jobs if jobs else (obj if isinstance(obj, list) else [obj])
        many = len(objs) > 1 or isinstance(obj, list)
        for n, o in enumerate(objs, 1):
            src = f"{name}#{n}" if many else name
            yield _from_record(src, n if many else None, o, "json", encoding, opts.mapping)
        return
    if suffix in HTML_SUFFIXES or (suffix not in TEXT_SUFFIXES and _TAG.search(text[:5000])):
        jobs = jobpostings_in_html(text)
        if jobs:  # schema.org JobPosting JSON-LD: the employer's own structured record comes first
            for n, o in enumerate(jobs, 1):
                src = f"{name}#{n}" if len(jobs) > 1 else name
                yield _from_record(src, n if len(jobs) > 1 else None, o, "html", encoding, {})
            return
        title, body = html_to_text(text)
        yield _posting(name, None, title, body, "html", {}, encoding)
        return
    yield _posting(name, None, None, text, "markdown" if suffix in (".md", ".markdown") else "text", {}, encoding)


def _sniff_suffix(data: bytes) -> str:
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        first_line = data.lstrip().split(b"\n", 1)[0].strip()
        if head == b"{" and first_line.endswith(b"}") and data.strip().count(b"\n") > 0:
            return ".jsonl"
        return ".json"
    if head == b"<":
        return ".html"
    return ".txt"


def decode(data: bytes) -> tuple[str, str, str | None]:
    """Bytes to text. UTF-8 first (most files); otherwise the encoding charset-normalizer finds,
    recorded so a person can see what was assumed. Binary data is refused, not guessed at."""
    for bom, enc in ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, None
            except UnicodeDecodeError:
                return "", "", f"undecodable text: {enc} byte-order mark but invalid {enc}"
    if data.count(b"\0") > max(8, len(data) // 100):
        return "", "", "binary file (NUL bytes): not a text posting"
    try:
        return data.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return "", "", "undecodable text: no character encoding fits"
    return str(best), str(best.encoding), None


def html_to_text(html: str) -> tuple[str | None, str]:
    from inscriptis import get_text
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    title = None
    m = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.I | re.S) or re.search(r"<title[^>]*>(.*?)</title>", html, re.I | re.S)
    if m:
        title = _clean_line(get_text(m.group(1)))
    text = get_text(html, ParserConfig(css=CSS_PROFILES["strict"], display_links=False))
    return title or None, text


def normalize_text(text: str) -> str:
    """One canonical layout for every source, so offsets are stable and sections can be read:
    Unix newlines, no control characters, single spaces, at most one blank line in a row.

    Written for speed (it runs on every posting, in the serial part of ingest), with the result of
    the plain version: the hyphens are replaced one by one (``str.translate`` with a table looks up
    every character in Python and cost half of ingest), and only runs of two or more spaces, or
    single odd spaces, are rewritten (rewriting every single space by itself with itself was the rest)."""
    text = unicodedata.normalize("NFKC", text)  # fullwidth letters, ligatures, odd spaces
    for hyphen, repl in _HYPHEN_REPLACEMENTS:  # "ICD‑10‑CM" written with non-breaking hyphens
        if hyphen in text:
            text = text.replace(hyphen, repl)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u2028", "\n").replace("\u2029", "\n").replace("\t", " ")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _clean_line(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().strip("#*").strip()


def _posting(source: str, record: int | None, title: str | None, body: str, fmt: str, meta: dict[str, Any], encoding: str, posting_id: str | None = None) -> Posting | Reject:
    body = normalize_text(body)
    if title:
        title = _clean_line(normalize_text(title))
    if not body and not title:
        return Reject(source, record, "no text in this posting")
    if title:
        first = body.split("\n", 1)[0]
        if _clean_line(first).lower() != title.lower():
            body = f"{title}\n\n{body}" if body else title
    else:
        first = _clean_line(body.split("\n", 1)[0])
        title = first if 0 < len(first) <= 150 else None
    if len(body.split()) < 3:
        return Reject(source, record, "too little text to be a job posting (fewer than 3 words)")
    posting = Posting(posting_id or _path_key(source), source, title, body, fmt, meta, encoding)
    if posting_id is None and source.split("#", 1)[0] == "-":
        posting.posting_id = f"stdin:{posting.content_hash[:16]}"  # each piped posting is its own
    return posting


def _path_key(source: str) -> str:
    """A posting with no id of its own is keyed by its file's real path (and record number), so
    the key does not depend on the working directory or on how the path was typed."""
    path, sep, rec = source.partition("#")
    if path == "-":
        return source
    return os.path.realpath(path) + sep + rec


def _pick(rec: dict[str, Any], keys: tuple[str, ...], mapping: dict[str, str] | None = None, role: str = "",
          lowered: dict[str, Any] | None = None) -> Any:
    """The first non-empty value under one of ``keys`` (field names compared lower-cased and
    stripped; ``lowered`` is that view of ``rec`` when the caller already has it)."""
    if mapping and role in mapping and mapping[role] in rec:  # a feed without the column falls back
        return rec.get(mapping[role]) if rec.get(mapping[role]) not in (None, "") else None
    if lowered is None:
        lowered = _lowered(rec)
    for k in keys:
        v = lowered.get(k)
        if v not in (None, ""):
            return v
    return None


def _lowered(rec: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower().strip(): v for k, v in rec.items()}


def _from_record(source: str, record: int | None, rec: Any, fmt: str, encoding: str, mapping: dict[str, str] | None = None) -> Posting | Reject:
    if not isinstance(rec, dict):
        return Reject(source, record, f"expected a JSON object, got {type(rec).__name__}")
    if str(rec.get("@type", "")) == "JobPosting":
        rec = _flatten_jobposting(rec)
    low = _lowered(rec)  # once per record, not once per field looked up
    body = _pick(rec, TEXT_KEYS, mapping, "text", low)
    title = _pick(rec, TITLE_KEYS, mapping, "title", low)
    if body is None:
        where = f"column {mapping['text']!r}" if mapping and "text" in mapping else f"looked for: {', '.join(TEXT_KEYS)}"
        return Reject(source, record, f"no text field ({where})")
    body = str(body)
    if _TAG.search(body[:5000]):
        _, body = html_to_text(body)
    for extra in ("qualifications", "educationrequirements_text"):
        more = rec.get(extra)
        if isinstance(more, str) and more.strip() and more.strip()[:60] not in body:
            body += f"\n\n{'Qualifications' if extra == 'qualifications' else 'Education'}:\n{html_to_text(more)[1] if _TAG.search(more) else more}"
    rid = _pick(rec, ID_KEYS, mapping, "id", low)
    meta: dict[str, Any] = {k: str(v) for k, v in ((k, _pick(rec, keys, mapping, k, low)) for k, keys in META_KEYS.items()) if v is not None}
    hints = rec.get("_hints") if isinstance(rec.get("_hints"), dict) else feed_hints(rec)
    if hints:
        meta["hints"] = hints
    return _posting(source, record, str(title) if title is not None else None, body, fmt, meta, encoding, str(rid) if rid is not None else None)


# --- structured fields: schema.org JobPosting and scraper exports ----------------------------

_JSONLD = re.compile(r"<script[^>]+type\s*=\s*[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", re.I | re.S)
_UNIT = {"HOUR": "hour", "WEEK": "week", "MONTH": "month", "YEAR": "year", "ANNUAL": "year"}
_EMPLOYMENT = {"FULL_TIME": "full_time", "PART_TIME": "part_time", "CONTRACTOR": "contract", "CONTRACT": "contract",
               "TEMPORARY": "temporary", "INTERN": "internship", "PER_DIEM": "per_diem", "FULLTIME": "full_time",
               "PARTTIME": "part_time", "INTERNSHIP": "internship"}


def jobpostings_in_jsonld(obj: Any) -> list[dict[str, Any]]:
    """Every schema.org JobPosting in a JSON-LD value (an object, a list, or an @graph)."""
    out: list[dict[str, Any]] = []
    stack = [obj]
    while stack:
        o = stack.pop(0)
        if isinstance(o, list):
            stack[0:0] = o
        elif isinstance(o, dict):
            t = o.get("@type")
            if t == "JobPosting" or (isinstance(t, list) and "JobPosting" in t):
                out.append(o)
            elif "@graph" in o:
                stack.insert(0, o["@graph"])
    return out


def jobpostings_in_html(html: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in _JSONLD.findall(html):
        try:
            found += jobpostings_in_jsonld(json.loads(block.strip()))
        except json.JSONDecodeError:
            continue
    return found


def _text_of(v: Any) -> str | None:
    if isinstance(v, dict):
        v = v.get("name") or v.get("value") or v.get("description")
    if isinstance(v, list):
        v = ", ".join(str(_text_of(x)) for x in v if _text_of(x))
    return str(v) if v not in (None, "") else None


def _number(v: Any) -> float | None:
    """45000, "45000", "$45,000.00" -> 45000.0; anything else None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(re.sub(r"[^\d.]", "", v) if isinstance(v, str) else v)
    except (TypeError, ValueError):
        return None


def _flatten_jobposting(jp: dict[str, Any]) -> dict[str, Any]:
    """A JobPosting as a plain record, with its structured pay, remote flag, employment type and
    experience as hints that take precedence over what the text suggests."""
    loc = jp.get("jobLocation")
    loc = loc[0] if isinstance(loc, list) and loc else loc
    addr = loc.get("address") if isinstance(loc, dict) else None
    location = None
    if isinstance(addr, dict):
        location = ", ".join(str(addr[k]) for k in ("addressLocality", "addressRegion", "addressCountry") if isinstance(addr.get(k), str))
    ident = jp.get("identifier")
    if isinstance(ident, dict):  # PropertyValue: the id is its value, never the employer's name
        ident = ident.get("value") or ident.get("@id")
    rec: dict[str, Any] = {
        "title": _text_of(jp.get("title")),
        "description": jp.get("description"),
        "id": _text_of(ident) if ident else None,
        "company": _text_of(jp.get("hiringOrganization")),
        "location": location or None,
        "date_posted": jp.get("datePosted"),
        "url": jp.get("url"),
        "qualifications": _text_of(jp.get("qualifications")),
    }
    edu = jp.get("educationRequirements")
    if edu:
        rec["educationrequirements_text"] = _text_of(edu) if not isinstance(edu, dict) else str(edu.get("credentialCategory") or "")
    hints: dict[str, Any] = {}
    jlt = jp.get("jobLocationType")
    if jlt == "TELECOMMUTE" or (isinstance(jlt, list) and "TELECOMMUTE" in jlt):
        hints["work_arrangement"] = "remote"
    et = jp.get("employmentType")
    if isinstance(et, list):  # ["PART_TIME", "FULL_TIME"]: full time is the one that matters
        et = "FULL_TIME" if "FULL_TIME" in et else (et[0] if et else None)
    if isinstance(et, str) and et.upper().replace("-", "_") in _EMPLOYMENT:
        hints["employment_type"] = _EMPLOYMENT[et.upper().replace("-", "_")]
    sal = jp.get("baseSalary")
    if isinstance(sal, dict):
        val = sal.get("value")
        cur = sal.get("currency")
        if isinstance(val, dict):
            lo, hi = val.get("minValue"), val.get("maxValue")
            if lo is None and hi is None:
                lo = hi = val.get("value")
            unit = _UNIT.get(str(val.get("unitText", "")).upper())
        else:
            lo = hi = val
            unit = None
        lo, hi = _number(lo), _number(hi)
        if (lo is not None or hi is not None) and unit:
            hints["salary"] = {"min": lo, "max": hi, "period": unit, "currency": str(cur or "USD").upper()}
    exp = jp.get("experienceRequirements")
    if isinstance(exp, dict) and exp.get("monthsOfExperience") is not None:
        months = _number(exp["monthsOfExperience"])
        if months is not None:
            hints["experience_years_min"] = round(months / 12, 2)
    elif isinstance(exp, str) and exp.strip():
        rec["qualifications"] = ((rec.get("qualifications") or "") + "\n" + exp).strip()
    rec["_hints"] = hints
    return rec


_INTERVALS = {"hourly": "hour", "yearly": "year", "annual": "year", "monthly": "month", "weekly": "week"}


def feed_hints(rec: dict[str, Any]) -> dict[str, Any]:
    """Structured columns of scraper exports (JobSpy: min_amount, max_amount, interval, currency,
    is_remote, job_type) as hints."""
    low = {str(k).lower(): v for k, v in rec.items()}
    hints: dict[str, Any] = {}
    interval = _INTERVALS.get(str(low.get("interval") or "").lower())
    if interval and (low.get("min_amount") not in (None, "") or low.get("max_amount") not in (None, "")):
        lo, hi = _number(low.get("min_amount")), _number(low.get("max_amount"))
        if lo is not None or hi is not None:
            hints["salary"] = {"min": lo, "max": hi, "period": interval, "currency": str(low.get("currency") or "USD").upper()}
    remote = low.get("is_remote")
    if remote in (True, "True", "true", "1", 1):
        hints["work_arrangement"] = "remote"
    jt = str(low.get("job_type") or "").split(",")[0].strip().upper().replace("-", "")
    if jt in _EMPLOYMENT:
        hints["employment_type"] = _EMPLOYMENT[jt]
    return hints


def _read_jsonl(name: str, data: bytes, opts: ReadOptions) -> Iterator[Posting | Reject]:
    lo, hi = opts.records or (1, None)
    lines = enumerate(data.split(b"\n"), 1)
    for n, raw in (itertools.islice(lines, lo - 1, None if hi is None else max(hi - 1, lo - 1)) if opts.records else lines):
        if not raw.strip():
            continue
        yield _jsonl_record(name, n, raw, len(raw), opts)


def _jsonl_record(name: str, n: int, raw: bytes, size: int, opts: ReadOptions) -> Posting | Reject:
    """Line ``n`` of a JSON Lines input (``size`` bytes long; ``raw`` is cut short when over the limit)."""
    max_bytes = opts.max_bytes
    src = f"{name}#{n}"
    if size > max_bytes:
        return Reject(src, n, f"record is {size:,} bytes, over the {max_bytes:,}-byte limit")
    text, encoding, problem = decode(raw)
    if problem:
        return Reject(src, n, problem)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Reject(src, n, f"malformed JSON line: {exc.msg} (column {exc.colno})")
    return _from_record(src, n, obj, "jsonl", encoding, opts.mapping)


def _stream_jsonl(path: str, gz: bool, opts: ReadOptions) -> Iterator[Posting | Reject]:
    """A JSON Lines file (gzipped or not) read a line at a time, so memory does not grow with the
    file: the same postings and rejects, with the same record numbers, as reading it whole. A line
    over the size limit is skipped without being held whole. A gzip file is decompressed once
    without keeping anything first, so that one that is broken or too big is rejected whole, before
    any of its postings, as before (~1 % of ingest time)."""
    cap = opts.max_bytes + 1
    try:
        if gz:
            with gzip.open(path, "rb") as check:
                total = 0
                while block := check.read(1 << 20):
                    total += len(block)
                    if total > MAX_DECOMPRESSED:
                        yield Reject(path, None, f"decompresses to over {MAX_DECOMPRESSED:,} bytes; split the file")
                        return
        fh = gzip.open(path, "rb") if gz else open(path, "rb")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield Reject(path, None, f"cannot read file: {exc.__class__.__name__}: {exc}")
        return
    n, seen_text = 0, False
    if opts.processes > 1 and _stream_size(path) >= PARALLEL_MIN_BYTES:
        records: Any = _ParallelRecords(path, opts)
    else:
        records = None
    try:
        with fh:
            while True:
                raw = fh.readline(cap)
                if not raw:
                    break
                n += 1
                size, blank, ended = len(raw), not raw.strip(), raw.endswith(b"\n")
                if not ended and len(raw) == cap:  # over the limit: skip the rest of the line, counting it
                    while True:
                        more = fh.readline(1 << 20)
                        if not more:
                            break
                        size += len(more)
                        blank = blank and not more.strip()
                        if more.endswith(b"\n"):
                            ended = True
                            break
                if ended:
                    size -= 1
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if blank:
                    continue
                seen_text = True
                if records is None:
                    yield _jsonl_record(path, n, raw, size, opts)
                else:
                    yield from records.add(n, raw, size)
            if records is not None:
                yield from records.finish()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if records is not None:
            yield from records.finish()  # the lines read before the error, as reading it serially would
        yield Reject(path, None, f"cannot read file: {exc.__class__.__name__}: {exc}")
        return
    finally:
        if records is not None:
            records.close()
    if not seen_text:
        yield Reject(path, None, "empty file")


# --- parsing records on several processes -------------------------------------------------------

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # smaller files are parsed faster than worker processes start
PARALLEL_CHUNK = 256


def _stream_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _parse_lines(name: str, max_bytes: int, mapping: dict[str, str], lines: list[tuple[int, bytes, int]]) -> list[Posting | Reject]:
    opts = ReadOptions(max_bytes, mapping)
    return [_jsonl_record(name, n, raw, size, opts) for n, raw, size in lines]


def _init_parser() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:  # Linux: die with the parent
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _ParallelRecords:
    """Lines of one JSON Lines file parsed (JSON, HTML to text, normalisation) on worker processes,
    a chunk at a time, handed back in file order: the same postings and rejects as parsing them in
    this process. At most a few chunks are in flight, so memory stays flat."""

    def __init__(self, name: str, opts: ReadOptions) -> None:
        import multiprocessing as mp
        from collections import deque

        self.name, self.opts = name, opts
        # spawn: no fork of a process that holds a DuckDB connection and its threads
        self.pool = mp.get_context("spawn").Pool(opts.processes, initializer=_init_parser)
        self.inflight: Any = deque()
        self.chunk: list[tuple[int, bytes, int]] = []

    def _submit(self) -> None:
        self.inflight.append(self.pool.apply_async(_parse_lines, (self.name, self.opts.max_bytes, self.opts.mapping, self.chunk)))
        self.chunk = []

    def add(self, n: int, raw: bytes, size: int) -> Iterator[Posting | Reject]:
        self.chunk.append((n, raw, size))
        if len(self.chunk) >= PARALLEL_CHUNK:
            self._submit()
            if len(self.inflight) >= 3 * self.opts.processes:
                yield from self.inflight.popleft().get()

    def finish(self) -> Iterator[Posting | Reject]:
        if self.chunk:
            self._submit()
        while self.inflight:
            yield from self.inflight.popleft().get()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def _read_csv(name: str, data: bytes, suffix: str, opts: ReadOptions) -> Iterator[Posting | Reject]:
    max_bytes = opts.max_bytes
    text, encoding, problem = decode(data)
    if problem:
        yield Reject(name, None, problem)
        return
    csv.field_size_limit(max(max_bytes, 131072))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
    fields = [str(f).lower().strip() for f in reader.fieldnames or []]
    if "text" in opts.mapping and opts.mapping["text"] in (reader.fieldnames or []):
        pass
    elif not any(k in fields for k in TEXT_KEYS):
        if "text" in opts.mapping:
            yield Reject(name, None, f"CSV has no column {opts.mapping['text']!r} (from --map text=...) and no standard text column; found: {', '.join(reader.fieldnames or []) or 'none'}")
            return
        yield Reject(name, None, f"CSV has no text column (looked for: {', '.join(TEXT_KEYS)}; found: {', '.join(fields) or 'none'})")
        return
    lo, hi = opts.records or (1, None)
    try:
        for n, row in enumerate(reader, 1):
            if n < lo:
                continue
            if len(str(row)) > max_bytes:
                yield Reject(f"{name}#{n}", n, f"record is over the {max_bytes:,}-byte limit")
            else:
                yield _from_record(f"{name}#{n}", n, row, "csv", encoding, opts.mapping)
            if hi is not None and n >= hi - 1:  # stop before parsing the next range's first row
                break
    except csv.Error as exc:
        yield Reject(name, None, f"malformed CSV: {exc}")
