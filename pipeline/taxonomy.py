"""The role taxonomy, read from the human-edited files in ``skill_taxonomy/``.

Every alias, weight and cue lives in those files; this module only reads them, checks them and
hands them on (to the spaCy pipeline builder and to DuckDB). Line numbers are kept on every entry
so that ``jobfit taxonomy validate`` can point a person at the line to fix.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROLE_IDS = (
    "medical_coder",
    "medical_biller",
    "billing_coding_specialist",
    "hospital_coder",
    "coding_auditor",
    "cdi_specialist",
    "coding_manager",
    "health_information_technician",
    "health_information_manager",
    "compliance_officer",
)
SKILL_CATEGORIES = (
    "code_system_knowledge",
    "software",
    "billing_process",
    "coding_process",
    "compliance",
    "domain_knowledge",
    "soft_skill",
    "education",
    "work_setting",
)
# the numbers and lists of cues.yaml `role_classification` that the role SQL reads
ROLE_CLASSIFICATION_KEYS = ("level_factors", "title_weight", "body_title_weight", "body_threshold", "context_veto",
                            "weak_title_min", "weak_titles", "generic_skills")
TAXONOMY_FILES = (
    "credentials.yaml",
    "code_systems.yaml",
    "skills.yaml",
    "education.yaml",
    "roles.yaml",
    "non_target.yaml",
    "cues.yaml",
    "fit.yaml",
)
# fit.yaml is scoring policy: matches are recomputed on every run, so it does not date extractions
NOT_IN_VERSION = ("fit.yaml",)
# what pipeline/fit.py reads from fit.yaml
FIT_KEYS = ("components", "item_weights", "unscored_skill_categories", "credit", "blocker_cap", "non_target_cap", "off_interest_cap",
            "unreachable_cap", "experience_grace_years",
            "education_grace_levels", "experience_areas", "weak_required", "unstated_items_fit", "implied_skills", "bands")


class TaxonomyError(Exception):
    """A taxonomy file cannot be read at all (missing, not YAML). Problems inside a readable
    file are collected as :class:`Problem` records instead, so that all of them are shown."""


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Term:
    """One taxonomy entry that can be found in text (a credential, code system, skill or
    education level). ``acronyms`` match case-sensitively, ``aliases`` case-insensitively."""

    kind: str
    id: str
    name: str
    aliases: tuple[str, ...]
    acronyms: tuple[str, ...]
    ambiguous: bool
    category: str
    source: str
    file: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class RoleItem:
    kind: str  # skill | credential | code_system
    id: str
    level: str  # required | preferred | typical
    weight: float


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    description: str
    title_aliases: tuple[str, ...]
    items: tuple[RoleItem, ...]
    education: dict[str, Any]
    experience: dict[str, Any]
    pay: tuple[dict[str, Any], ...]
    outlook: tuple[dict[str, Any], ...]
    onet: tuple[str, ...]
    source: str
    file: str
    line: int


@dataclass
class Taxonomy:
    root: Path
    version: str
    terms: dict[str, dict[str, Term]]  # kind -> id -> Term
    roles: dict[str, Role]
    non_target: dict[str, Any]
    cues: dict[str, Any]
    problems: list[Problem]
    fit: dict[str, Any] = field(default_factory=dict)

    def term(self, kind: str, term_id: str) -> Term | None:
        return self.terms.get(kind, {}).get(term_id)

    def lookup(self, text: str, kinds: tuple[str, ...] | None = None) -> Term | None:
        """Resolve a name a person wrote (id, acronym or alias) to a taxonomy entry.

        Profiles are written by people ("Epic", "certified professional coder"), so they are
        resolved the same way the extractor resolves posting text.
        """
        want = text.strip()
        low = want.lower()
        for kind in kinds or tuple(self.terms):
            for term in self.terms.get(kind, {}).values():
                if want == term.id or low == term.id.lower() or low == term.name.lower():
                    return term
                if want in term.acronyms or low in (a.lower() for a in term.aliases):
                    return term
                if low in (a.lower() for a in term.acronyms):
                    return term
        return None


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster start-up


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML loader that records the 1-based line of every mapping as ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = _BaseLoader.construct_mapping(loader, node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def default_taxonomy_dir() -> Path:
    """``JOBFIT_TAXONOMY`` if set, else the ``skill_taxonomy/`` folder of this checkout."""
    env = os.environ.get("JOBFIT_TAXONOMY")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "skill_taxonomy"


def taxonomy_version(root: Path) -> str:
    """A hash of every taxonomy file, so stored extractions know which rules made them."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.yaml")):
        if path.name in NOT_IN_VERSION:
            continue
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _read(root: Path, name: str) -> Any:
    path = root / name
    if not path.exists():
        raise TaxonomyError(f"{path}: taxonomy file is missing")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from exc


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value if v is not None and str(v).strip())


def _terms(kind: str, file: str, data: Any, problems: list[Problem]) -> dict[str, Term]:
    out: dict[str, Term] = {}
    if not isinstance(data, list):
        problems.append(Problem(file, 1, "expected a list of entries"))
        return out
    for raw in data:
        if not isinstance(raw, dict):
            problems.append(Problem(file, 1, f"entry {raw!r} is not a mapping"))
            continue
        line = int(raw.get("__line__", 0))
        term_id = str(raw.get("id") or "").strip()
        if not term_id:
            problems.append(Problem(file, line, "entry has no id"))
            continue
        if term_id in out:
            problems.append(Problem(file, line, f"duplicate id {term_id!r} (first at line {out[term_id].line})"))
            continue
        if not str(raw.get("source") or "").strip():
            problems.append(Problem(file, line, f"{term_id}: missing source"))
        acronyms = _strs(raw.get("acronyms"))
        formerly = _strs(raw.get("formerly"))
        extra = {k: v for k, v in raw.items() if k not in {"id", "name", "aliases", "acronyms", "ambiguous", "category", "source", "__line__"}}
        category = str(raw.get("category") or kind)
        if kind == "skill" and category not in SKILL_CATEGORIES:
            problems.append(Problem(file, line, f"{term_id}: unknown skill category {category!r}"))
        # "formerly" acronyms (CPC-H for COC) are found in text and reported as the current id.
        out[term_id] = Term(
            kind=kind,
            id=term_id,
            name=str(raw.get("name") or term_id),
            aliases=_strs(raw.get("aliases")) + tuple(f for f in formerly if " " in f),
            acronyms=tuple(dict.fromkeys(acronyms + tuple(f for f in formerly if " " not in f))),
            ambiguous=bool(raw.get("ambiguous", False)),
            category=category,
            source=str(raw.get("source") or ""),
            file=file,
            line=line,
            extra=extra,
        )
    return out


def _role_items(role_id: str, raw: dict[str, Any], file: str, line: int, problems: list[Problem]) -> list[RoleItem]:
    items: list[RoleItem] = []

    def add(kind: str, level: str, entries: Any) -> None:
        for e in entries or []:
            if isinstance(e, str):
                e = {"id": e, "weight": 1}
            if not isinstance(e, dict) or "id" not in e:
                problems.append(Problem(file, line, f"{role_id}: bad {kind} entry {e!r}"))
                continue
            items.append(RoleItem(kind, str(e["id"]), level, float(e.get("weight", 1))))

    skills = raw.get("skills") or {}
    if isinstance(skills, dict):
        add("skill", "required", skills.get("required"))
        add("skill", "preferred", skills.get("preferred"))
    else:
        add("skill", "typical", skills)
    add("credential", "typical", raw.get("credentials"))
    add("code_system", "typical", raw.get("code_systems"))
    return items


def load_taxonomy(root: Path | None = None) -> Taxonomy:
    """Read and check every taxonomy file. Problems are collected, not raised, so that
    ``validate`` can list them all; callers that need a usable taxonomy call :func:`require_valid`."""
    root = Path(root) if root else default_taxonomy_dir()
    if not root.is_dir():
        raise TaxonomyError(f"{root}: taxonomy folder not found (set JOBFIT_TAXONOMY or --taxonomy)")
    problems: list[Problem] = []
    terms = {
        "credential": _terms("credential", "credentials.yaml", _read(root, "credentials.yaml"), problems),
        "code_system": _terms("code_system", "code_systems.yaml", _read(root, "code_systems.yaml"), problems),
        "skill": _terms("skill", "skills.yaml", _read(root, "skills.yaml"), problems),
        "education": _terms("education", "education.yaml", _read(root, "education.yaml"), problems),
    }
    roles: dict[str, Role] = {}
    raw_roles = _read(root, "roles.yaml")
    for raw in raw_roles if isinstance(raw_roles, list) else []:
        line = int(raw.get("__line__", 0))
        role_id = str(raw.get("id") or "")
        if role_id not in ROLE_IDS:
            problems.append(Problem("roles.yaml", line, f"unknown role id {role_id!r}; expected one of {', '.join(ROLE_IDS)}"))
            continue
        if role_id in roles:
            problems.append(Problem("roles.yaml", line, f"duplicate role id {role_id!r}"))
            continue
        if not str(raw.get("source") or "").strip():
            problems.append(Problem("roles.yaml", line, f"{role_id}: missing source"))
        roles[role_id] = Role(
            id=role_id,
            name=str(raw.get("name") or role_id),
            description=str(raw.get("description") or ""),
            title_aliases=_strs(raw.get("title_aliases")),
            items=tuple(_role_items(role_id, raw, "roles.yaml", line, problems)),
            education=_clean(raw.get("education") or {}),
            experience=_clean(raw.get("experience") or {}),
            pay=tuple(_clean(p) for p in raw.get("pay") or []),
            outlook=tuple(_clean(o) for o in raw.get("outlook") or []),
            onet=_strs(raw.get("onet")),
            source=str(raw.get("source") or ""),
            file="roles.yaml",
            line=line,
        )
    for missing in sorted(set(ROLE_IDS) - set(roles)):
        problems.append(Problem("roles.yaml", 1, f"role {missing!r} is missing"))
    non_target = _clean(_read(root, "non_target.yaml") or {})
    cues = _clean(_read(root, "cues.yaml") or {})
    fit = _clean(_read(root, "fit.yaml") or {})
    tax = Taxonomy(root, taxonomy_version(root), terms, roles, non_target, cues, problems, fit)
    _check_references(tax)
    _check_aliases(tax)
    return tax


def _clean(value: Any) -> Any:
    """Drop the loader's ``__line__`` bookkeeping from nested data handed to other modules."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _check_references(tax: Taxonomy) -> None:
    p = tax.problems
    for role in tax.roles.values():
        for item in role.items:
            if item.id not in tax.terms[item.kind]:
                p.append(Problem(role.file, role.line, f"{role.id}: unknown {item.kind} id {item.id!r}"))
        for key in ("typical", "minimum"):
            level = role.education.get(key)
            if level and level not in tax.terms["education"]:
                p.append(Problem(role.file, role.line, f"{role.id}: unknown education level {level!r}"))
    rc = tax.cues.get("role_classification") or {}
    for key in ROLE_CLASSIFICATION_KEYS:
        if key not in rc:
            p.append(Problem("cues.yaml", 1, f"role_classification.{key} is missing"))
    for level in ("required", "preferred", "mentioned", "not_required"):
        if level not in (rc.get("level_factors") or {}):
            p.append(Problem("cues.yaml", 1, f"role_classification.level_factors.{level} is missing"))
    for sid in rc.get("generic_skills") or []:
        if sid not in tax.terms["skill"]:
            p.append(Problem("cues.yaml", 1, f"role_classification.generic_skills names unknown skill {sid!r}"))
    _check_fit(tax)
    creds = tax.terms["credential"]
    for cred in creds.values():
        for rel in ("implies", "satisfied_by"):
            for other in _strs(cred.extra.get(rel)):
                if other not in creds:
                    p.append(Problem(cred.file, cred.line, f"{cred.id}: {rel} names unknown credential {other!r}"))
        appr = cred.extra.get("apprentice_of")
        if appr and appr not in creds:
            p.append(Problem(cred.file, cred.line, f"{cred.id}: apprentice_of names unknown credential {appr!r}"))


def _check_fit(tax: Taxonomy) -> None:
    p, fit = tax.problems, tax.fit
    for key in FIT_KEYS:
        if key not in fit:
            p.append(Problem("fit.yaml", 1, f"{key} is missing"))
    comps = fit.get("components") or {}
    for key in ("required", "preferred", "experience", "education", "pay", "arrangement", "role"):
        if not isinstance(comps.get(key), (int, float)):
            p.append(Problem("fit.yaml", 1, f"components.{key} must be a number"))
    if comps and all(isinstance(v, (int, float)) for v in comps.values()) and abs(sum(comps.values()) - 1.0) > 1e-6:
        p.append(Problem("fit.yaml", 1, f"components must add up to 1 (they add up to {sum(comps.values()):g})"))
    for kind in ("credential", "code_system", "skill"):
        if not isinstance((fit.get("item_weights") or {}).get(kind), (int, float)):
            p.append(Problem("fit.yaml", 1, f"item_weights.{kind} must be a number"))
    for key in ("active", "in_progress", "expired", "apprentice_accepted", "apprentice_not_accepted"):
        v = (fit.get("credit") or {}).get(key)
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            p.append(Problem("fit.yaml", 1, f"credit.{key} must be a number from 0 to 1"))
    areas = fit.get("experience_areas") or {}
    for role_id in (areas.get("by_role") or {}):
        if role_id not in tax.roles:
            p.append(Problem("fit.yaml", 1, f"experience_areas.by_role names unknown role {role_id!r}"))
    for sid in areas.get("inpatient_skills") or []:
        if sid not in tax.terms["skill"]:
            p.append(Problem("fit.yaml", 1, f"experience_areas.inpatient_skills names unknown skill {sid!r}"))
    implied = fit.get("implied_skills") or {}
    for broad, narrow in (implied.get("by_skill") or {}).items():
        for sid in [broad, *(narrow or [])]:
            if sid not in tax.terms["skill"]:
                p.append(Problem("fit.yaml", 1, f"implied_skills.by_skill names unknown skill {sid!r}"))
    categories = {t.category for t in tax.terms["credential"].values()}
    for cat, sids in (implied.get("by_credential_category") or {}).items():
        if cat not in categories:
            p.append(Problem("fit.yaml", 1, f"implied_skills.by_credential_category names unknown credential category {cat!r}"))
        for sid in sids or []:
            if sid not in tax.terms["skill"]:
                p.append(Problem("fit.yaml", 1, f"implied_skills.by_credential_category.{cat} names unknown skill {sid!r}"))
    floors = [b.get("min") for b in fit.get("bands") or [] if isinstance(b, dict)]
    if floors and (floors != sorted(floors, reverse=True) or floors[-1] != 0):
        p.append(Problem("fit.yaml", 1, "bands must be listed highest first and end with min: 0"))


def _check_aliases(tax: Taxonomy) -> None:
    """Two entries of the same kind must never share a surface form: the matcher could not
    tell which one a posting meant."""
    for kind, entries in tax.terms.items():
        seen: dict[str, Term] = {}
        for term in entries.values():
            forms = {a.lower() for a in term.aliases} | {f"\0{a}" for a in term.acronyms}
            for form in sorted(forms):
                other = seen.get(form)
                if other is not None and other.id != term.id:
                    shown = form.lstrip("\0")
                    tax.problems.append(
                        Problem(term.file, term.line, f"alias {shown!r} of {term.id} also belongs to {other.id} (line {other.line})")
                    )
                else:
                    seen[form] = term
    seen_titles: dict[str, str] = {}
    for role in tax.roles.values():
        for alias in role.title_aliases:
            key = alias.lower()
            if key in seen_titles and seen_titles[key] != role.id:
                tax.problems.append(Problem(role.file, role.line, f"title alias {alias!r} of {role.id} also belongs to {seen_titles[key]}"))
            seen_titles[key] = role.id


def require_valid(tax: Taxonomy) -> Taxonomy:
    if tax.problems:
        shown = "\n".join(f"  {p}" for p in tax.problems[:20])
        more = f"\n  ... and {len(tax.problems) - 20} more" if len(tax.problems) > 20 else ""
        raise TaxonomyError(f"the taxonomy in {tax.root} has {len(tax.problems)} problem(s):\n{shown}{more}")
    return tax
