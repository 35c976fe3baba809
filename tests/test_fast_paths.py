"""The speed-ups of issue 5 must not change a result: each fast path is checked against the plain
version it replaced (kept here as the reference), on real postings and on adversarial strings."""

from __future__ import annotations

import gzip
import random
import re
import unicodedata
from pathlib import Path

import pytest

from pipeline import codes, ingest
from pipeline.ingest import Posting, ReadOptions, Reject, normalize_text, read_path
from pipeline.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent

# --- the reference versions (as they were before the speed-ups) ---------------------------------

_DASH = r"(?:-|–|—|to|through|thru)"
REF_CODES = {
    "_ICD10CM": re.compile(r"(?<![\w.$£/-])([A-TV-Z][0-9][0-9AB](?:\.[0-9A-TV-Z]{1,4})?)(?![\w/])(?!\.\d)"),
    "_PCS": re.compile(r"(?<![\w.-])([0-9BCDFGHX][0-9A-HJ-NP-Z]{6})(?![\w-])"),
    "_CPT": re.compile(r"(?<![\w.$£,/-])(\d{4}[0-9FTU])(?:\s*" + _DASH + r"\s*(\d{4}[0-9FTU]))?(?![\w]|\.\d|,\d)"),
    "_HCPCS": re.compile(r"(?<![\w.-])([A-CEGHJ-MP-V]\d{4})(?![\w-])"),
}
_REF_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-", "\u00ad": ""})


def ref_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_REF_HYPHENS)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u2028", "\n").replace("\u2029", "\n").replace("\t", " ")
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]", "", text)
    text = re.sub(r"[ \u2000-\u200a\u202f\u205f\u3000]+", " ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _texts() -> list[str]:
    """Sample postings, plus random strings made of the pieces the patterns care about."""
    out = [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "sample_postings").rglob("*")) if p.is_file()]
    rnd = random.Random(5)
    pieces = list("0123456789 .,-$£€kK\n/+()#:ABCDEFGHJKLMNPQRSTUVWXYZ") + [
        "years", "yrs", "months", "one", "twenty", "ſix", "fıve", "up to ", "from ", "from  \n ", "starting at ", "USD", "CA$",
        "C$", "GBP", " per hour", "/hr", "DRG ", "MS-DRG", "modifier ", "Modifiers: ", "25", "E11.9", "99213", "J1100",
        "0DTJ4ZZ", "salary", "pay", "\u00a0", "\u2003", "\t", "  ", "\u0663", "1,2", "a1", "x.5"]
    out += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 40))) for _ in range(4000)]
    return out


@pytest.fixture(scope="module")
def reader() -> codes.FactReader:
    tax = load_taxonomy(None)
    return codes.FactReader(tax.cues.get("pay") or {}, tax.cues.get("experience") or {})


def test_code_patterns_match_exactly_where_the_lookbehind_first_ones_did():
    for text in _texts():
        for name, ref in REF_CODES.items():
            fast = getattr(codes, name)
            assert [(m.span(), m.groups()) for m in fast.finditer(text)] == [(m.span(), m.groups()) for m in ref.finditer(text)], (name, text)


def test_pay_matches_are_those_of_finditer(reader):
    for text in _texts() + ["from   £20,000 to £30,000 a year", "Band 5 1,2 $5k", "starting from\n\n$ 18.50/hr - $21/hr", "£1,234,567.891"]:
        fast = [(m.span(), m.groupdict()) for m in reader._pay_matches(text)]
        assert fast == [(m.span(), m.groupdict()) for m in reader.pay_re.finditer(text)], text


def test_pay_figures_are_still_read(reader):
    sal = reader.salary("Salary: from £24,907 to £30,615 per annum")
    assert (sal["min"], sal["max"], sal["period"], sal["currency"]) == (24907, 30615, "year", "GBP")
    assert reader.salary("We pay $22.50/hr") ["period"] == "hour"
    assert reader.salary("Band 5, 37.5 hours a week") is None


REF_UNIT = re.compile(r"(?:years?|yrs?|months?|mos?)\b", re.I)
REF_PAY_WORD = re.compile(r"\b(?:salary|pay|wages?|rate|compensation|usd|cad|gbp|eur)\b", re.I)
_ENDS = ("\n", ". ", "! ", "? ", "; ")


def ref_line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max([0] + [text.rfind(e, 0, start) + len(e) for e in _ENDS if text.rfind(e, 0, start) != -1])
    hi_candidates = [i for i in (text.find(e, end) for e in _ENDS) if i != -1]
    return lo, (min(hi_candidates) if hi_candidates else len(text))


_WORDY = ["Years", "YRS", "yrſ", "mos", "Mos.", "smears", "summary", "moths", "month's", "yearly", "Salary", "SALARY:", "xpay",
          "pay_", "_pay", "ſalary", "wage.", "wagesx", "Compensation!", "GBP", "eurx", "1pay", "épay", "pay1", "rates", "Rate"]


def _wordy_texts() -> list[str]:
    rnd = random.Random(7)
    pieces = _WORDY + list(" .;!?\n-,:") + ["3 ", "two ", "up to three\n\nmonths", "; ", "? ", ". "]
    return _texts() + ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 30))) for _ in range(3000)]


def test_unit_and_pay_word_patterns_match_where_the_re_i_ones_did():
    for text in _wordy_texts():
        assert [m.span() for m in codes._UNIT.finditer(text)] == [m.span() for m in REF_UNIT.finditer(text)], text
        assert [m.span() for m in codes._PAY_WORD.finditer(text)] == [m.span() for m in REF_PAY_WORD.finditer(text)], text


def test_line_bounds_are_those_of_the_plain_version():
    for text in _wordy_texts():
        for start in range(0, len(text), 3):
            end = min(start + 2, len(text))
            assert codes._line_bounds(text, start, end) == ref_line_bounds(text, start, end), (text, start)


def test_years_searched_line_by_line_find_what_a_whole_text_search_finds(reader):
    """The years figures are looked for only in the lines holding a unit word (with the lines above
    one whose unit opens its line): wherever no figure runs across a line break, that is every
    match a search of the whole text finds; across blank lines before the unit, it still reads it."""
    checked = 0
    for text in _wordy_texts():
        whole = [(m.span(), m.groups()) for m in reader.years_re.finditer(text)]
        if any("\n" in text[s:e] for (s, e), _ in whole):
            continue
        checked += 1
        assert [(m.span(), m.groups()) for m in reader._year_matches(text)] == whole, text
    assert checked > 3000
    assert reader.years("Requirements:\n- 2+ years of coding experience") == 2
    assert reader.years("We ask for three\n\nyears of coding experience") == 3
    assert reader.years("Coding experience: 4 years. Billing: 2\n\nyrs experience") == 2
    assert reader.years("3 years experience\nthree\n\nmonths experience") == 0.25


def test_normalize_text_is_the_plain_version():
    rnd = random.Random(1)
    alphabet = list("ab \n\r\t\u00a0\u2028\u2029\u2000\u2005\u200a\u202f\u205f\u3000\u200b\ufeff\x00\x07\x1f\x7f"
                    "\u2010\u2011\u2012\u2212\u00ad-ﬁＡ")
    texts = _texts()[:50] + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))) for _ in range(5000)]
    for text in texts:
        assert normalize_text(text) == ref_normalize(text), repr(text)


REC = b'{"id": "a%d", "title": "Coder", "description": "CPC required with 2 years of coding experience"}'


def _jsonl(tmp_path: Path, name: str, data: bytes, gz: bool) -> Path:
    p = tmp_path / (name + (".jsonl.gz" if gz else ".jsonl"))
    if gz:
        with gzip.open(p, "wb") as fh:
            fh.write(data)
    else:
        p.write_bytes(data)
    return p


def _summary(items: list) -> list[tuple]:
    return [(x.posting_id, x.source.rsplit("#", 1)[-1]) if isinstance(x, Posting) else ("reject", x.record, x.reason) for x in items]


@pytest.mark.parametrize("gz", [False, True])
def test_streamed_jsonl_numbers_lines_and_rejects_as_before(tmp_path, gz):
    big = b'{"id": "big", "description": "' + b"x " * 400 + b'"}'
    data = (b"\n" + REC % 1 + b"\r\n  \n" + big + b"\n" + b" " * 700 + b"\n{not json}\n" + b"y" * 301 + b"\n" + REC % 2)
    items = list(read_path(str(_jsonl(tmp_path, "feed", data, gz)), ReadOptions(max_bytes=300)))
    assert _summary(items) == [
        ("a1", "2"),
        ("reject", 4, f"record is {len(big)} bytes, over the 300-byte limit"),
        ("reject", 6, "malformed JSON line: Expecting property name enclosed in double quotes (column 2)"),
        ("reject", 7, "record is 301 bytes, over the 300-byte limit"),
        ("a2", "8"),
    ]
    assert _summary(list(read_path(str(_jsonl(tmp_path, "blank", b" \n\t\n", gz))))) == [("reject", None, "empty file")]


def test_truncated_gzip_is_rejected_whole(tmp_path):
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(gzip.compress(b"\n".join(REC % i for i in range(50)))[:-12])
    items = list(read_path(str(p)))
    assert len(items) == 1 and isinstance(items[0], Reject) and items[0].reason.startswith("cannot read file")


def test_parallel_parsing_gives_the_same_postings(tmp_path, monkeypatch):
    lines = [REC % i for i in range(700)]
    lines[10] = b"{broken"
    lines[500] = b'{"id": "h", "description": "<p>Certified <b>Professional</b> Coder required</p><ul><li>CPC</li></ul>"}'
    p = _jsonl(tmp_path, "many", b"\n".join(lines) + b"\n", False)
    serial = list(read_path(str(p), ReadOptions()))
    monkeypatch.setattr(ingest, "PARALLEL_MIN_BYTES", 0)
    parallel = list(read_path(str(p), ReadOptions(processes=2)))
    assert [vars(x) for x in parallel] == [vars(x) for x in serial]
    assert len(serial) == 700 and isinstance(serial[10], Reject)


def test_roles_classified_in_chunks_equal_one_query(tmp_path, monkeypatch):
    from pipeline import runner

    def roles(db: str) -> list[tuple]:
        ctx = runner.open_context(db, cache_dir=tmp_path / "cache")
        runner.ingest(ctx, [str(ROOT / "sample_postings")])
        runner.extract_pending(ctx)
        rows = ctx.con.execute("SELECT * FROM posting_roles ORDER BY posting_id").fetchall()
        ctx.con.close()
        return rows

    whole = roles(str(tmp_path / "whole.duckdb"))
    monkeypatch.setattr(runner, "ROLE_CHUNK", 3)
    assert roles(str(tmp_path / "chunked.duckdb")) == whole and len(whole) >= 20
