"""Numbers in postings: specific codes (E11.9, 99213, J1100…), years of experience and pay.

These are formats, not vocabulary: the shapes of ICD-10-CM / ICD-10-PCS / CPT / HCPCS codes are
public facts of the code systems, while the words around them (periods, number words, context
words) come from ``skill_taxonomy/cues.yaml`` through :class:`FactReader`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

from . import codesets

# --- codes -------------------------------------------------------------------------------

_DASH = r"(?:-|–|—|to|through|thru)"
# Each code pattern opens with the character class its code starts with, and the "not preceded by"
# test comes after that character as a two-character lookbehind: ``X(?<![set]X)`` accepts exactly
# where ``(?<![set])X`` does (at the start of the text both lookbehinds have nothing to look at), but
# a pattern that opens with a character class lets ``re`` jump from candidate to candidate in C,
# instead of trying the whole pattern at every position of the posting (~45 us a pattern a posting).
_ICD10CM = re.compile(r"([A-TV-Z](?<![\w.$£/-][A-TV-Z])[0-9][0-9AB](?:\.[0-9A-TV-Z]{1,4})?)(?![\w/])(?!\.\d)")
_PCS = re.compile(r"([0-9BCDFGHX](?<![\w.-][0-9BCDFGHX])[0-9A-HJ-NP-Z]{6})(?![\w-])")
_CPT = re.compile(r"(\d(?<![\w.$£,/-]\d)\d{3}[0-9FTU])(?:\s*" + _DASH + r"\s*(\d{4}[0-9FTU]))?(?![\w]|\.\d|,\d)")
_HCPCS = re.compile(r"([A-CEGHJ-MP-V](?<![\w.-][A-CEGHJ-MP-V])\d{4})(?![\w-])")
_DRG = re.compile(r"\b(?:MS-|APR-)?DRGs?\s*#?\s*(\d{3})\b")
_MODIFIER = re.compile(r"\bmodifiers?\s*:?\s*-?((?:\d{2}|[A-Z]{2}|[A-Z]\d)(?:\s*(?:/|,|&|and|or)\s*-?(?:\d{2}|[A-Z]{2}|[A-Z]\d))*)(?!\w)", re.I)
# "4+ years in revenue operations", "3 years as a coder": the years a job asks for
_YEARS_IN = re.compile(r"\s*(?:of\s+)?(?:in|as|with|working|doing|of)\s+(?:an?\s+|the\s+)?[a-z]")
_NOT_PAY_AFTER = re.compile(r"\s*(?:\+\s*)?(?:(?:years?|yrs?|months?|hours|days|weeks? of|employees|beds|patients|charts|staff|miles|billion|million|bn|m)\b|hrs? per|%|percent)")
_HAS_DIGIT = re.compile(r"\d")
_CURRENCY_CODE = re.compile(r"\b(usd|cad|gbp|eur)\b")
_PERIOD_CURRENCY = re.compile(r"^\s*(?:usd|cad|gbp|us|ca)\b")


def _words_re(words: Iterable[str]) -> re.Pattern[str]:
    """``\\b(?:w1|w2|...)\\b`` under re.I, written to open with a character class (the first letters,
    both cases, and the non-ASCII letters re.I folds onto them), so that ``re`` jumps in C between
    candidate letters instead of trying the alternation at every character: a scan of a whole
    posting for a few pay words fell from ~50 to ~15 us."""
    folds = {"i": "İı", "k": "K", "s": "ſ"}
    words = sorted({w.lower() for w in words}, key=lambda w: (w[0], -len(w)))
    firsts = sorted({w[0] for w in words})
    cls = "".join(re.escape(c + c.upper() + folds.get(c, "")) for c in firsts)
    branches = "|".join(f"(?<={re.escape(w[0])}){re.escape(w[1:])}" for w in words)
    return re.compile(f"[{cls}](?<!\\w.)(?i:{branches})\\b")


_PAY_WORD = _words_re(["salary", "pay", "wage", "wages", "rate", "compensation", "usd", "cad", "gbp", "eur"])
_CODE_CONTEXT = re.compile(r"\b(codes?|coding|coded|cpt|e/m|icd|hcpcs|drg|modifiers?|procedures?|visits?|levels?)\b", re.I)
# where a pay figure's number may start (the lookbehind of the amount in FactReader.pay_re)
_PAY_NUM_START = re.compile(r"\d(?<![\w.,]\d)")
# the unit every years-of-experience figure ends with: ``(?:years?|yrs?|months?|mos?)\b`` under
# re.I, the end of FactReader.years_re, written to open with a character class so that ``re`` jumps
# from y/m to y/m in C (14 us a posting against 59); "ſ" is the one other character re.I matches
# for any letter here
_UNIT = re.compile(r"[yYmM](?:(?<=[yY])(?:[eE][aA][rR]|[rR])|(?<=[mM])(?:[oO][nN][tT][hH]|[oO]))[sSſ]?\b")


_ENDS = ("\n", ". ", "! ", "? ", "; ")


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence-ish stretch around a match: line breaks and end punctuation bound it.

    The line break is looked for first and the other ends only between it and the match: a "; "
    or "? " a posting never holds otherwise had ``rfind``/``find`` scan the whole text, once per
    figure. Same bounds: every other end lies within its line (none contains a line break)."""
    nl = text.rfind("\n", 0, start)
    lo = nl + 1
    for e in _ENDS[1:]:
        i = text.rfind(e, lo, start)
        if i != -1 and i + 2 > lo:
            lo = i + 2
    hi = text.find("\n", end)
    if hi == -1:
        hi = len(text)
    for e in _ENDS[1:]:
        i = text.find(e, end, hi + 1)
        if i != -1 and i < hi:
            hi = i
    return lo, hi


def _in_code_context(text: str, start: int, end: int) -> bool:
    lo, hi = _line_bounds(text, start, end)
    return bool(_CODE_CONTEXT.search(text, lo, hi))


def find_codes(text: str, code_system_spans: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """Every specific code written in the text, with a validity flag from the real code sets
    (``None`` where no code set is available to check against)."""
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    if not _HAS_DIGIT.search(text):
        return found

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    def add(system: str, code: str, valid: bool | None, a: int, b: int) -> None:
        taken.append((a, b))
        found.append({"system": system, "code": code, "valid": valid, "text": text[a:b], "start": a, "end": b})

    drgs = _DRG.finditer(text) if "DRG" in text else ()  # the pattern needs these three capitals
    for m in drgs:
        add("DRG", m.group(1), codesets.drg_valid(m.group(1)), m.start(), m.end())
    # "modifier" under IGNORECASE: m, o and d have no case partners beyond M, O and D
    mods = _MODIFIER.finditer(text) if "mod" in text.lower() else ()
    for m in mods:
        if not free(m.start(), m.end()):
            continue
        taken.append((m.start(), m.end()))
        for mod in re.split(r"\s*(?:/|,|&|\band\b|\bor\b)\s*", m.group(1)):
            if mod:
                found.append({"system": "MODIFIERS", "code": mod.lstrip("-").upper(), "valid": None,
                              "text": m.group(0), "start": m.start(), "end": m.end()})
    for m in _CPT.finditer(text):
        if not free(m.start(), m.end()):
            continue
        first, last = m.group(1), m.group(2)
        distinctive = first[-1] in "FTU" or last is not None
        if not distinctive and not _in_code_context(text, m.start(), m.end()):
            continue
        if first[-1] == "U" and not _in_code_context(text, m.start(), m.end()):
            continue
        code = f"{first}-{last}" if last else first
        valid = codesets.cpt_valid(first) and (codesets.cpt_valid(last) if last else True)
        add("CPT", code, valid, m.start(), m.end())
    for m in _HCPCS.finditer(text):
        if not free(m.start(), m.end()):
            continue
        if not _in_code_context(text, m.start(), m.end()) and not codesets.hcpcs_valid(m.group(1)):
            continue
        add("HCPCS", m.group(1), codesets.hcpcs_valid(m.group(1)), m.start(), m.end())
    for m in _PCS.finditer(text):
        code = m.group(1)
        if not free(m.start(), m.end()) or sum(c.isdigit() for c in code) < 2 or code.isdigit() or not any(c.isalpha() for c in code):
            continue
        add("ICD-10-PCS", code, codesets.pcs_valid(code), m.start(), m.end())
    for m in _ICD10CM.finditer(text):
        code = m.group(1)
        if not free(m.start(), m.end()):
            continue
        if "." not in code and not _in_code_context(text, m.start(), m.end()):
            continue
        add("ICD-10-CM", code, codesets.icd10cm_valid(code), m.start(), m.end())
    found.sort(key=lambda c: (c["start"], c["system"], c["code"]))
    return found


# --- years and pay -------------------------------------------------------------------------


class FactReader:
    """Reads minimum years of experience and pay from a posting, with the vocabulary of cues.yaml."""

    def __init__(self, pay: dict[str, Any], experience: dict[str, Any]) -> None:
        words = {str(k).lower(): float(v) for k, v in (experience.get("number_words") or {}).items()}
        self.number_words = words
        num = r"(\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")" if words else r"(\d+(?:\.\d+)?)"
        paren = r"(?:\s*\(\s*\d+\s*\))?"
        unit = r"\s*\+?\s*(?:-?\s*plus\s+|or more\s+)?(years?|yrs?|months?|mos?)\b"
        self.years_re = re.compile(
            r"(?<![\w.$£])" + num + paren + r"\s*\+?\s*(?:" + _DASH + r"\s*" + num + paren + r")?" + unit, re.I
        )
        self.exp_context = [str(w).lower() for w in experience.get("context") or []]
        self.exp_ignore = [str(w).lower() for w in experience.get("ignore_with") or []]
        self.exp_ignore_after = tuple(str(w).lower() for w in experience.get("ignore_after") or [])

        periods = pay.get("periods") or {}
        self.period_words: list[tuple[str, str]] = sorted(
            ((str(w).lower(), p) for p, ws in periods.items() for w in ws), key=lambda x: -len(x[0])
        )
        # compiled once here, not looked up in re's cache for every word of every pay figure
        self._period_patterns = [(w, p, None if w.startswith("/") else re.compile(r"(?:\(|,|\s|\+)*" + re.escape(w) + r"\b"))
                                 for w, p in self.period_words]
        self.currencies = {str(k): str(v) for k, v in (pay.get("currencies") or {}).items()}
        cur = "|".join(sorted(map(re.escape, self.currencies), key=len, reverse=True)) or r"\$"
        amount = r"(?P<cur{n}>" + cur + r")?\s?(?<![\w.,])(?P<num{n}>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)(?![\d,]\d)\s?(?P<k{n}>[kK]\b)?"
        pre = ("up to", "upto", "from", "starting at", "starting from", "starts at", "min(?:imum)?(?: of)?")
        # how far before its number a pay match can start, besides the whitespace run between the
        # leading word and the currency: the longest leading word, the longest currency, one space
        self._pay_reach = (max(len(w) for w in pre) + 3, max(map(len, self.currencies), default=1) + 1)
        self.pay_re = re.compile(
            r"(?P<pre>" + "|".join(pre) + r")?\s*"
            + amount.replace("{n}", "1")
            + r"(?:\s*(?:/\s*(?:hr|hour|h|yr|year)\b|per hour|an hour|per annum)?\s*(?:-|–|—|to|and|rising to)\s*"
            + amount.replace("{n}", "2")
            + r")?",
            re.I,
        )
        self.pay_context = [str(w).lower() for w in pay.get("context") or []]
        self.pay_ignore = [str(w).lower() for w in pay.get("ignore_with") or []]
        self.canada = [str(w).lower() for w in pay.get("canada_words") or []]
        self.annual_hours = float(pay.get("annual_hours") or 2080)
        self.weeks = float(pay.get("weeks_per_year") or 52)

    # finding matches without trying the patterns at every position ------------------------------
    #
    # ``pay_re`` is case-insensitive and opens with optional words, so ``re`` tries it at every
    # character of a posting (~600 us a posting). The generator below yields exactly the matches
    # ``pay_re.finditer`` yields, in the same order, trying the pattern only near numbers. Why it is
    # the same, for finditer's "leftmost match at or after pos": every match contains its first
    # number, which starts at a digit that the amount's lookbehind allows; nothing before that
    # number in a match (leading word, spaces, currency) can be a digit, so it is the first such
    # digit at or after the match's start, i.e. the first one at or after ``pos``; and a match
    # starts at most ``_pay_reach`` characters plus one whitespace run before its number. So no
    # match starts between ``pos`` and that point, and ``search`` from there finds the leftmost.

    def _pay_matches(self, text: str) -> Iterator[re.Match[str]]:
        reach_word, reach_cur = self._pay_reach
        pos, n = 0, len(text)
        while pos <= n:
            d = _PAY_NUM_START.search(text, pos)
            if d is None:
                return
            q = max(d.start() - reach_cur, 0)
            while q > 0 and text[q - 1].isspace():
                q -= 1
            m = self.pay_re.search(text, max(pos, q - reach_word))
            if m is None:
                return
            yield m
            pos = m.end() if m.end() > m.start() else m.end() + 1

    # years
    def _num(self, s: str | None) -> float | None:
        if s is None:
            return None
        s = s.lower()
        if s in self.number_words:
            return self.number_words[s]
        try:
            return float(s)
        except ValueError:
            return None

    def _year_matches(self, text: str) -> Iterator[re.Match[str]]:
        """``years_re`` matches, looked for only in the lines that hold a unit word.

        ``years_re`` opens with a lookbehind and a choice of numbers and number words ("a", "an"),
        so ``re`` tries it at every character of a posting (~120 us a posting, the largest single
        cost of the resolver). Every match ends with its unit ("years", "yrs", "months", "mos"),
        found here by a pattern ``re`` skips through quickly; the figures are searched for in the
        lines holding a unit, reaching back over blank lines when the unit opens its line ("up to
        three\n\nmonths": text cut into lines by HTML), one search where such reaches overlap. A
        figure split across a line break elsewhere is not read; on the 14,842 NHS postings, the
        samples and the real postings this reads the same years as a search of the whole text."""
        n = len(text)
        windows: list[list[int]] = []
        for u in _UNIT.finditer(text):
            if windows and u.start() < windows[-1][1]:
                continue
            a = text.rfind("\n", 0, u.start()) + 1
            while a > 0 and not text[a : u.start()].strip():
                a = text.rfind("\n", 0, a - 1) + 1
            b = text.find("\n", u.end())
            b = n if b == -1 else b
            if windows and a <= windows[-1][1]:
                windows[-1][1] = b  # reached back into the window before: one search over both
            else:
                windows.append([a, b])
        for a, b in windows:
            yield from self.years_re.finditer(text, a, b)

    def years(self, text: str) -> float | None:
        low = text.lower()
        best: float | None = None
        for m in self._year_matches(text):
            lo, hi = _line_bounds(text, m.start(), m.end())
            sentence = low[lo:hi]
            if any(w in sentence for w in self.exp_ignore):
                continue
            after = low[m.end() : min(m.end() + 60, hi)]
            if after.lstrip().startswith(self.exp_ignore_after):
                continue
            before = low[max(m.start() - 60, lo) : m.start()]
            if not any(w in after for w in self.exp_context) and "experience" not in before and not _YEARS_IN.match(after):
                continue
            if re.search(r"\bno\s+(?:\w+\s+)?experience", sentence):
                continue
            value = self._num(m.group(1))
            if value is None or value > 40:
                continue
            if m.group(3).lower().startswith("mo"):
                value = round(value / 12, 2)
            if best is None or value < best:
                best = value
        if best is not None and best == int(best):
            return int(best)
        return best

    # pay
    def _period(self, text: str, end: int) -> str | None:
        tail = text[end : end + 28].lower()
        tail = _PERIOD_CURRENCY.sub("", tail).lstrip()
        for word, period, pattern in self._period_patterns:
            if pattern is None:
                if tail.startswith(word) or tail.startswith(word.replace(" ", "")):
                    return period
            elif pattern.match(tail):
                return period
        return None

    def salary(self, text: str) -> dict[str, Any] | None:
        """The first pay figure with a currency; a bare number in a pay sentence only when
        there is none ("Band 7 ... salary of £38,890" is £38,890, not 7)."""
        if "$" not in text and "£" not in text and "€" not in text and not _PAY_WORD.search(text):
            return None  # [$£€] or a pay word: the symbols by substring search, cheaper than a regex
        bare: list[Any] = []
        found = self._salary(text, self._pay_matches(text), False, bare)
        return found if found is not None else self._salary(text, iter(bare), True, [])

    def _salary(self, text: str, matches: Any, allow_bare: bool, bare: list[Any]) -> dict[str, Any] | None:
        low = text.lower()
        for m in matches:
            a1, a2 = m.group("num1"), m.group("num2")
            cur = m.group("cur1") or m.group("cur2")
            code = _CURRENCY_CODE.search(low, max(m.start() - 8, 0), m.end() + 10)
            if cur is None and code is None and not allow_bare:
                bare.append(m)  # a number with no currency: only if no figure has one
                continue
            lo, hi = _line_bounds(text, m.start(), m.end())
            sentence = low[lo:hi]
            near = low[max(m.start() - 40, lo) : m.start()] + " " + low[m.end() : min(m.end() + 12, hi)]
            if any(w in near for w in self.pay_ignore):
                continue
            after = low[m.end() : m.end() + 12]
            if _NOT_PAY_AFTER.match(after):
                continue
            # "60-70K": the K of the second figure scales the first one too
            v1 = _money(a1, m.group("k1") or (m.group("k2") if a2 and float(a1.replace(",", "")) < 1000 else None))
            v2 = _money(a2, m.group("k2")) if a2 else None
            if v1 is None:
                continue
            if cur is None and code is None:
                if not re.search(r"\b(?:salary|pay|wages?|rate|compensation)\b", sentence):
                    continue
                if v1 < 7:
                    continue
            period = self._period(text, m.end())
            if period is None and a2 is not None:
                period = self._period(text, m.end("num1"))  # "$20/hr - $24/hr"
            if period is None:
                period = _infer_period(max(v1, v2 or 0))
            if period == "hour" and max(v1, v2 or 0) > 500:
                continue
            if v1 < 5 or (v2 is not None and v2 < v1):
                continue
            currency = self.currencies.get((cur or "").upper() if cur and cur.isalpha() else (cur or ""), None)
            if code is not None:
                currency = code.group(1).upper()
            if currency is None:
                currency = "GBP" if "£" in text else "USD"
            if currency == "USD" and (cur in (None, "$")) and any(w in low for w in self.canada):  # only then: 16 scans of the text
                currency = "CAD"
            pre = (m.group("pre") or "").lower()
            lo_v, hi_v = v1, (v2 if v2 is not None else v1)
            if pre.startswith("up"):
                lo_v, hi_v = None, v1
            elif (pre.startswith(("from", "start", "min")) or text[m.end() : m.end() + 1] == "+") and v2 is None:
                hi_v = None  # "from $20/hr", "$40,000+": open-ended
            out = self.salary_record(lo_v, hi_v, period, currency)
            out.update({"text": text[m.start() : m.end()].strip(),
                        "start": m.start() + (len(m.group(0)) - len(m.group(0).lstrip())), "end": m.end()})
            return out
        return None

    def salary_record(self, lo: float | None, hi: float | None, period: str, currency: str) -> dict[str, Any]:
        """A pay range with its annual equivalent (hours and weeks per year from cues.yaml)."""
        mult = {"hour": self.annual_hours, "week": self.weeks, "month": 12.0, "year": 1.0}[period]
        return {
            "min": _clean_num(lo),
            "max": _clean_num(hi),
            "period": period,
            "currency": currency,
            "annual_min": _clean_num(round(lo * mult, 2)) if lo is not None else None,
            "annual_max": _clean_num(round(hi * mult, 2)) if hi is not None else None,
        }

    def read(self, text: str) -> dict[str, Any]:
        return {"experience_years_min": self.years(text), "salary": self.salary(text)}


def _money(num: str | None, k: str | None) -> float | None:
    if num is None:
        return None
    try:
        value = float(num.replace(",", ""))
    except ValueError:
        return None
    if k:
        value *= 1000
    return value


def _clean_num(v: float | None) -> float | int | None:
    if v is None:
        return None
    return int(v) if float(v).is_integer() else round(v, 2)


def _infer_period(amount: float) -> str:
    if amount < 300:
        return "hour"
    if amount < 1500:
        return "week"
    if amount < 15000:
        return "month"
    return "year"
