"""Job-seeker profiles: a YAML (or JSON) file a person writes, resolved against the taxonomy.

People write "Epic" and "certified professional coder", not taxonomy ids, so every name is
resolved the way posting text is; names that resolve to nothing are reported, not dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import safe_name
from .taxonomy import Taxonomy

ARRANGEMENTS = {"remote", "hybrid", "onsite"}
STATUSES = {"active", "in_progress", "expired"}


class ProfileError(Exception):
    """The profile file cannot be used; the message names the field (and line where known)."""


@dataclass
class Profile:
    profile_id: str
    name: str
    path: str
    credentials: dict[str, str] = field(default_factory=dict)  # id -> status
    skills: set[str] = field(default_factory=set)
    code_systems: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)
    experience_years: float = 0.0
    education: str | None = None
    desired_annual: float | None = None
    currency: str | None = None
    work_arrangement: list[str] = field(default_factory=list)
    roles_of_interest: list[str] = field(default_factory=list)
    education_rank: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def code_system_families(self) -> set[str]:
        return self.code_systems | self.families

    def credential_closure(self, links: dict[str, dict[str, set[str]]]) -> set[str]:
        """Active credentials plus what they imply; a generic "any coding certification"
        requirement is met by any credential that satisfies it."""
        have = {c for c, status in self.credentials.items() if status == "active"}
        implies = links.get("implies", {})
        frontier = list(have)
        while frontier:
            c = frontier.pop()
            for other in implies.get(c, ()):
                if other not in have:
                    have.add(other)
                    frontier.append(other)
        for generic, members in links.get("satisfied_by", {}).items():
            if have & members:
                have.add(generic)
        return have

    def to_json(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id, "name": self.name, "credentials": self.credentials,
            "skills": sorted(self.skills), "code_systems": sorted(self.code_systems),
            "experience_years": self.experience_years, "education": self.education,
            "desired_annual": self.desired_annual, "work_arrangement": self.work_arrangement,
            "roles_of_interest": self.roles_of_interest, "warnings": self.warnings,
        }


def _list(data: dict[str, Any], key: str) -> list[Any]:
    """A field meant as a list also accepts one value ("credentials: CPC")."""
    v = data.get(key)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def load_profile(path: str | Path, tax: Taxonomy) -> Profile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read profile: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{p}: a profile is a mapping of fields (name, credentials, skills, ...)")
    prof = Profile(safe_name(p.stem, "profile"), str(data.get("name") or p.stem), str(p), raw=data)

    for entry in _list(data, "credentials"):
        status = "active"
        if isinstance(entry, dict):
            status = str(entry.get("status") or "active")
            entry = entry.get("id")
            if status not in STATUSES:
                raise ProfileError(f"{p}: credentials: status of {entry!r} must be one of {', '.join(sorted(STATUSES))}; got {status!r}")
        term = tax.lookup(str(entry), ("credential",)) if entry else None
        if term is None:
            prof.warnings.append(f"credentials: {entry!r} is not a credential in the taxonomy")
            continue
        prof.credentials[term.id] = status
    for key in ("skills", "software"):
        for entry in _list(data, key):
            term = tax.lookup(str(entry), ("skill", "code_system"))
            if term is None:
                prof.warnings.append(f"{key}: {entry!r} is not in the taxonomy")
            elif term.kind == "code_system":
                prof.code_systems.add(term.id)
            else:
                prof.skills.add(term.id)
    for entry in _list(data, "code_systems"):
        term = tax.lookup(str(entry), ("code_system",))
        if term is None:
            prof.warnings.append(f"code_systems: {entry!r} is not a code system in the taxonomy")
            continue
        prof.code_systems.add(term.id)
        prof.families.add(str(term.extra.get("family") or term.id))
    try:
        prof.experience_years = float(data.get("experience_years") or 0)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{p}: experience_years must be a number, got {data.get('experience_years')!r}") from exc
    edu = data.get("education")
    if edu:
        term = tax.lookup(str(edu), ("education",))
        if term is None:
            prof.warnings.append(f"education: {edu!r} is not an education level ({', '.join(tax.terms['education'])})")
        else:
            prof.education = term.id
    pay = data.get("desired_pay")
    if isinstance(pay, dict) and pay.get("min") is not None:
        period = str(pay.get("period") or "year")
        pay_cues = tax.cues.get("pay") or {}
        per_year = {"hour": float(pay_cues.get("annual_hours", 2080)), "week": float(pay_cues.get("weeks_per_year", 52)), "month": 12.0, "year": 1.0}
        if period not in per_year:
            raise ProfileError(f"{p}: desired_pay.period must be one of hour, week, month, year; got {period!r}")
        try:
            prof.desired_annual = float(pay["min"]) * per_year[period]
        except (TypeError, ValueError) as exc:
            raise ProfileError(f"{p}: desired_pay.min must be a number, got {pay['min']!r}") from exc
        prof.currency = str(pay.get("currency") or "USD").upper()
    arr = data.get("work_arrangement") or []
    arr = [arr] if isinstance(arr, str) else arr
    bad = [a for a in arr if a not in ARRANGEMENTS]
    if bad:
        raise ProfileError(f"{p}: work_arrangement values must be remote, hybrid or onsite; got {bad}")
    prof.work_arrangement = list(arr)
    prof.roles_of_interest = [str(r) for r in _list(data, "roles_of_interest")]
    prof.education_rank = {t.id: int(t.extra.get("rank") or 0) for t in tax.terms["education"].values()}
    return prof
