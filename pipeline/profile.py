"""Job-seeker profiles: a YAML or JSON file a person writes, or a JSON Resume, resolved against the taxonomy.

People write "Epic" and "certified professional coder", not taxonomy ids, so every name is
resolved the way posting text is. A name that resolves to nothing is kept as a warning that names
the field, the line and the nearest taxonomy entry (RapidFuzz), because a silently dropped "CPC"
typo would quietly turn a strong fit into a blocker. Wrong types are errors, with the line.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from .config import safe_name
from .taxonomy import Taxonomy

ARRANGEMENTS = ("remote", "hybrid", "onsite")
STATUSES = ("active", "in_progress", "expired")
AREAS = ("coding", "billing", "inpatient")
PERIODS = ("hour", "week", "month", "year")
PROFILE_SUFFIXES = (".yaml", ".yml", ".json")


class ProfileError(Exception):
    """The profile file cannot be used; the message names the file, field and line."""


@dataclass
class Profile:
    profile_id: str
    name: str
    path: str
    credentials: dict[str, str] = field(default_factory=dict)  # id -> status
    skills: set[str] = field(default_factory=set)
    code_systems: set[str] = field(default_factory=set)
    experience_years: float = 0.0
    experience: dict[str, float] = field(default_factory=dict)  # area -> years, only areas the person gave
    education: str | None = None
    desired_annual: float | None = None
    desired_text: str | None = None
    currency: str | None = None
    work_arrangement: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    roles_of_interest: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source_format: str = "profile"  # or "json_resume"

    def items(self, tax: Taxonomy) -> list[tuple[str, float, str, str]]:
        """(item key, credit, held credential, status) rows the fit SQL joins against posting items.

        Credentials earn the credit of their status (fit.yaml ``credit``); an apprentice
        credential (CPC-A) also yields ``apprentice:CPC``, which a posting's CPC item accepts in
        full only when the posting names the apprentice credential; ``implies`` adds the implied
        credential (RHIA -> RHIT) at the same credit, remembering which credential it came from.
        Keys are ``kind:id``.
        """
        credit_of = (tax.fit.get("credit") or {})
        out: dict[str, tuple[float, str, str]] = {}

        def give(key: str, credit: float, origin: str, status: str) -> None:
            if key not in out or credit > out[key][0]:
                out[key] = (credit, origin, status)

        for cid, status in sorted(self.credentials.items()):
            credit = float(credit_of.get(status, 0.0))
            if credit <= 0:
                continue
            frontier = [cid]
            seen: set[str] = set()
            while frontier:
                c = frontier.pop()
                if c in seen:
                    continue
                seen.add(c)
                give(f"credential:{c}", credit, cid, status)
                term = tax.term("credential", c)
                if term is None:
                    continue
                if term.extra.get("apprentice_of"):
                    give(f"apprentice:{term.extra['apprentice_of']}", credit, cid, status)
                frontier.extend(term.extra.get("implies") or [])
        implied = tax.fit.get("implied_skills") or {}
        broader: dict[str, list[str]] = {}
        for broad, narrow in (implied.get("by_skill") or {}).items():
            for n in narrow or []:
                broader.setdefault(n, []).append(broad)
        by_category = implied.get("by_credential_category") or {}
        for cs in self.code_systems:
            give(f"code_system:{cs}", 1.0, cs, "active")
        for sk in sorted(self.skills):
            give(f"skill:{sk}", 1.0, sk, "active")
        for sk in sorted(self.skills):
            for b in broader.get(sk, []):
                give(f"skill:{b}", 1.0, sk, "active")
        for cid, status in sorted(self.credentials.items()):
            term = tax.term("credential", cid)
            if status == "active" and term is not None:
                for sk in by_category.get(term.category, []):
                    give(f"skill:{sk}", 1.0, cid, "active")
        return sorted((k, c, o, st) for k, (c, o, st) in out.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id, "name": self.name, "credentials": dict(sorted(self.credentials.items())),
            "skills": sorted(self.skills), "code_systems": sorted(self.code_systems),
            "experience_years": self.experience_years, "experience": dict(sorted(self.experience.items())),
            "education": self.education, "desired_annual": self.desired_annual, "desired_text": self.desired_text,
            "currency": self.currency, "work_arrangement": self.work_arrangement, "locations": self.locations,
            "roles_of_interest": self.roles_of_interest, "warnings": self.warnings, "source_format": self.source_format,
        }


# --- reading -------------------------------------------------------------------------------


class _Lines:
    """Line numbers of the fields and list entries of a YAML/JSON document, for messages."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            return
        self._walk(node, ())

    def _walk(self, node: Any, path: tuple[Any, ...]) -> None:
        if node is None:
            return
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.lines[path + (k.value,)] = k.start_mark.line + 1
                self._walk(v, path + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, path + (i,))

    def at(self, *path: Any) -> str:
        while path:
            if path in self.lines:
                return f"line {self.lines[path]}"
            path = path[:-1]
        return ""


class _Resolver:
    """Resolve names against the taxonomy and suggest the nearest entry for those that do not."""

    def __init__(self, tax: Taxonomy, where: str, lines: _Lines, warnings: list[str]) -> None:
        self.tax, self.where, self.lines, self.warnings = tax, where, lines, warnings
        self._choices: dict[tuple[str, ...], dict[str, str]] = {}

    def choices(self, kinds: tuple[str, ...]) -> dict[str, str]:
        if kinds not in self._choices:
            names: dict[str, str] = {}
            for kind in kinds:
                for t in self.tax.terms.get(kind, {}).values():
                    for form in (t.id, t.name, *t.aliases, *t.acronyms):
                        names.setdefault(form.lower(), f"{t.name} ({t.id})" if t.name != t.id else t.id)
            self._choices[kinds] = names
        return self._choices[kinds]

    def suggest(self, text: str, kinds: tuple[str, ...]) -> str:
        names = self.choices(kinds)
        best = process.extractOne(text.lower(), list(names), scorer=fuzz.WRatio, score_cutoff=70)
        return f"; did you mean {names[best[0]]!r}?" if best else ""

    def resolve(self, value: Any, kinds: tuple[str, ...], path: tuple[Any, ...], label: str) -> Any:
        text = clean_text(value)
        term = self.tax.lookup(text, kinds) if text else None
        if term is None:
            loc = self.lines.at(*path)
            self.warnings.append(f"{self.where}{':' + loc if loc else ''}: {label}: {text!r} is not {_kind_phrase(kinds)} "
                                 f"in the taxonomy{self.suggest(text, kinds)}")
        return term


_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\x00-\x08\x0b-\x1f\x7f]")


def clean_text(value: Any) -> str:
    """What a person meant: full-width letters folded (NFKC), zero-width and bidi-control
    characters dropped (they hide in copied text and would print raw to a terminal)."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", str(value))).strip()


def _kind_phrase(kinds: tuple[str, ...]) -> str:
    words = {"credential": "a credential", "skill": "a skill", "code_system": "a code system", "education": "an education level"}
    return " or ".join(words.get(k, k) for k in kinds)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _number(value: Any, where: str, label: str, most: float | None = None) -> float:
    if isinstance(value, bool):
        raise ProfileError(f"{where}: {label} must be a number, got {value!r}")
    try:
        n = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ProfileError(f"{where}: {label} must be a number, got {value!r}") from None
    if n < 0 or n != n:
        raise ProfileError(f"{where}: {label} must be zero or more, got {value!r}")
    if most is not None and n > most:
        raise ProfileError(f"{where}: {label} of {value!r} is not believable (at most {most:g})")
    return n


MAX_YEARS = 60.0
MAX_PAY = {"hour": 1_000.0, "week": 40_000.0, "month": 200_000.0, "year": 2_000_000.0}


def read_data(path: str | Path) -> tuple[dict[str, Any], _Lines]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError(f"{p}: a profile must be UTF-8 text") from None
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read profile: {exc.strerror or exc}") from exc
    is_json = p.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{p}:line {exc.lineno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark else "line ?"
        raise ProfileError(f"{p}:{at}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{p}: a profile is a mapping of fields (name, credentials, skills, ...), "
                           "or a JSON Resume (basics, work, skills, certificates, education)")
    return data, _Lines(text)


def is_json_resume(data: dict[str, Any]) -> bool:
    schema = str(data.get("$schema") or "")
    return "jsonresume" in schema or ("basics" in data and any(k in data for k in ("work", "skills", "certificates", "education")))


def load_profile(path: str | Path, tax: Taxonomy, *, today: date | None = None) -> Profile:
    """Read a profile file (YAML/JSON profile or JSON Resume). ``today`` dates open-ended
    JSON Resume jobs; it defaults to the real date."""
    p = Path(path)
    data, lines = read_data(p)
    if is_json_resume(data):
        from .resume import profile_fields_from_json_resume

        fields, notes = profile_fields_from_json_resume(data, tax, today or date.today())
        prof = _build(p, fields, tax, _Lines(""), source_format="json_resume")
        prof.warnings[:0] = [f"{p}: {n}" for n in notes]
        return prof
    return _build(p, data, tax, lines)


def _build(p: Path, data: dict[str, Any], tax: Taxonomy, lines: _Lines, source_format: str = "profile") -> Profile:
    where = str(p)
    prof = Profile(safe_name(p.stem, "profile"), clean_text(data.get("name") or p.stem) or p.stem, where, source_format=source_format)
    r = _Resolver(tax, where, lines, prof.warnings)

    def at(*path: Any) -> str:
        loc = lines.at(*path)
        return f"{where}:{loc}" if loc else where

    for i, entry in enumerate(_as_list(data.get("credentials"))):
        status = "active"
        if isinstance(entry, dict):
            status = re.sub(r"[\s-]+", "_", clean_text(entry.get("status") or "active").lower())
            if status not in STATUSES:
                raise ProfileError(f"{at('credentials', i, 'status')}: credentials: status of {entry.get('id')!r} must be one of "
                                   f"{', '.join(STATUSES)}; got {status!r}")
            entry = entry.get("id")
            if entry is None:
                raise ProfileError(f"{at('credentials', i)}: credentials: an entry written as a mapping needs an id (id: CPC)")
        term = r.resolve(entry, ("credential",), ("credentials", i), "credentials")
        if term is not None:
            old = prof.credentials.get(term.id)
            if old is not None and old != status:
                best = min(old, status, key=STATUSES.index)  # active beats in_progress beats expired
                prof.warnings.append(f"{at('credentials', i)}: credentials: {term.id} is listed as {old} and as {status}; "
                                     f"{best} is kept")
                status = best
            prof.credentials[term.id] = status
    for key in ("skills", "software"):
        for i, entry in enumerate(_as_list(data.get(key))):
            term = r.resolve(entry, ("skill", "code_system"), (key, i), key)
            if term is None:
                continue
            (prof.code_systems if term.kind == "code_system" else prof.skills).add(term.id)
    for i, entry in enumerate(_as_list(data.get("code_systems"))):
        term = r.resolve(entry, ("code_system",), ("code_systems", i), "code_systems")
        if term is not None:
            prof.code_systems.add(term.id)
    if data.get("experience_years") is not None:
        prof.experience_years = _number(data["experience_years"], at("experience_years"), "experience_years", MAX_YEARS)
    exp = data.get("experience")
    if exp is not None:
        if not isinstance(exp, dict):
            raise ProfileError(f"{at('experience')}: experience is a mapping of area to years ({', '.join(AREAS)}: N)")
        for area, years in exp.items():
            if area not in AREAS:
                raise ProfileError(f"{at('experience', area)}: experience: unknown area {area!r}; areas are {', '.join(AREAS)}")
            prof.experience[area] = _number(years, at("experience", area), f"experience.{area}", MAX_YEARS)
    if data.get("experience_years") is None and prof.experience:  # total not given: the largest area is a floor
        prof.experience_years = max(prof.experience.values())
    over = [a for a, y in prof.experience.items() if y > prof.experience_years]
    if over:
        prof.warnings.append(f"{at('experience')}: experience: {', '.join(over)} years exceed experience_years "
                             f"({prof.experience_years:g}); the total is raised to match")
        prof.experience_years = max(prof.experience.values())
    edu = data.get("education")
    if edu:
        term = r.resolve(edu, ("education",), ("education",), "education")
        if term is not None:
            prof.education = term.id
    pay = data.get("desired_pay")
    if pay is not None:
        if not isinstance(pay, dict) or pay.get("min") is None:
            raise ProfileError(f"{at('desired_pay')}: desired_pay is a mapping like {{min: 22, period: hour, currency: USD}}")
        period = str(pay.get("period") or "year")
        if period not in PERIODS:
            raise ProfileError(f"{at('desired_pay', 'period')}: desired_pay.period must be one of {', '.join(PERIODS)}; got {period!r}")
        amount = _number(pay["min"], at("desired_pay", "min"), f"desired_pay.min per {period}", MAX_PAY[period])
        pay_cues = tax.cues.get("pay") or {}
        per_year = {"hour": float(pay_cues.get("annual_hours", 2080)), "week": float(pay_cues.get("weeks_per_year", 52)),
                    "month": 12.0, "year": 1.0}
        prof.desired_annual = amount * per_year[period]
        prof.currency = str(pay.get("currency") or "USD").upper()
        prof.desired_text = f"{amount:g} {prof.currency}/{period}"
    arr = _as_list(data.get("work_arrangement"))
    for i, a in enumerate(arr):
        if a not in ARRANGEMENTS:
            raise ProfileError(f"{at('work_arrangement', i)}: work_arrangement values are {', '.join(ARRANGEMENTS)}; got {a!r}")
    prof.work_arrangement = [str(a) for a in arr]
    prof.locations = [str(x) for x in _as_list(data.get("locations"))]
    for i, role in enumerate(_as_list(data.get("roles_of_interest"))):
        role = str(role)
        if role not in tax.roles:
            names = {rid: rid for rid in tax.roles} | {ro.name.lower(): rid for rid, ro in tax.roles.items()}
            if role.lower() in names:
                role = names[role.lower()]
            else:
                best = process.extractOne(role.lower().replace(" ", "_"), list(tax.roles), scorer=fuzz.WRatio, score_cutoff=60)
                hint = f"; did you mean {best[0]!r}?" if best else f" (roles: {', '.join(tax.roles)})"
                prof.warnings.append(f"{at('roles_of_interest', i)}: roles_of_interest: {role!r} is not a role{hint}")
                continue
        prof.roles_of_interest.append(role)
    return prof


def profile_files(directory: str | Path) -> list[Path]:
    """Profile files in a folder (not hidden, YAML or JSON), sorted; two files with one stem
    would share a profile id, so that is an error rather than one silently replacing the other."""
    d = Path(directory)
    files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in PROFILE_SUFFIXES)
    seen: dict[str, Path] = {}
    for f in files:
        pid = safe_name(f.stem, "profile")
        if pid in seen:
            raise ProfileError(f"{f}: has the same profile id {pid!r} as {seen[pid]}; rename one of them")
        seen[pid] = f
    return files
