"""Precision / recall / F1 of the extractor against hand-labelled gold files.

Gold format and conventions: ``tests/gold/README.md`` (the same as the shared real-postings set).
Scoring conventions: ``hospital_coder`` counts as ``medical_coder``; a predicted role is right when
it is in the gold ``roles_ok``; code systems are compared by family for ICD-10 (ICD-10-CM,
ICD-10-PCS, ICD-10-CA and plain ICD-10 are one) and only over the systems the gold labels
(HRG and others outside that list are not scored); pay is exact on min, max, period and currency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ingest import Reject, read_path
from .runner import quick_extract
from .taxonomy import Taxonomy

ICD10_FAMILY = {"ICD-10-CM", "ICD-10-PCS", "ICD-10-CA", "ICD-10"}
# The code systems the gold files label (their README); others jobfit finds (HRG, ...) are not scored.
GOLD_SYSTEMS = ICD10_FAMILY | {"ICD-9-CM", "CPT", "HCPCS", "DRG", "APC", "HCC", "OPCS-4", "SNOMED-CT", "E/M", "MODIFIERS"}


def _role(r: str) -> str:
    return "medical_coder" if r == "hospital_coder" else r


def _sys(s: str) -> str:
    return "ICD-10" if s in ICD10_FAMILY else s


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gold: set, pred: set) -> None:
        self.tp += len(gold & pred)
        self.fp += len(pred - gold)
        self.fn += len(gold - pred)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Acc:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.right += int(ok)

    @property
    def value(self) -> float:
        return self.right / self.total if self.total else 1.0


@dataclass
class Report:
    n: int = 0
    target: PRF = field(default_factory=PRF)
    role: Acc = field(default_factory=Acc)
    credentials: PRF = field(default_factory=PRF)
    credentials_level: PRF = field(default_factory=PRF)
    level_right: Acc = field(default_factory=Acc)
    code_systems: PRF = field(default_factory=PRF)
    years: Acc = field(default_factory=Acc)
    salary: Acc = field(default_factory=Acc)
    arrangement: Acc = field(default_factory=Acc)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def prf(x: PRF) -> dict[str, float]:
            return {"precision": round(x.precision, 4), "recall": round(x.recall, 4), "f1": round(x.f1, 4), "tp": x.tp, "fp": x.fp, "fn": x.fn}

        return {
            "postings": self.n,
            "target_detection": prf(self.target),
            "role_accuracy": round(self.role.value, 4),
            "credentials": prf(self.credentials),
            "credentials_with_level": prf(self.credentials_level),
            "credential_level_accuracy": round(self.level_right.value, 4),
            "code_systems": prf(self.code_systems),
            "min_years_exact": round(self.years.value, 4),
            "salary_exact": round(self.salary.value, 4),
            "work_arrangement_exact": round(self.arrangement.value, 4),
        }

    def table(self) -> str:
        d = self.as_dict()
        lines = [f"postings: {self.n}", f"{'field':<28}{'precision':>10}{'recall':>10}{'f1':>10}"]
        for key in ("target_detection", "credentials", "credentials_with_level", "code_systems"):
            m = d[key]
            lines.append(f"{key:<28}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}")
        lines.append(f"{'field':<28}{'accuracy':>10}")
        for key in ("role_accuracy", "credential_level_accuracy", "min_years_exact", "salary_exact", "work_arrangement_exact"):
            lines.append(f"{key:<28}{d[key]:>10.3f}")
        return "\n".join(lines)


def _salary_eq(g: dict[str, Any] | None, p: dict[str, Any] | None) -> bool:
    if g is None or p is None:
        return g is None and p is None

    def eq(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is None and b is None
        return abs(float(a) - float(b)) < 0.011

    return eq(g.get("min"), p.get("min")) and eq(g.get("max"), p.get("max")) and g.get("period") == p.get("period") and g.get("currency") == p.get("currency")


class GoldError(Exception):
    """The gold file cannot be used; the message names the line."""


REQUIRED_GOLD_KEYS = ("file", "is_target", "role")


def load_gold(path: Path, postings_dir: Path | None = None) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            g = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{path}:{n}: not valid JSON: {exc.msg}") from exc
        missing = [k for k in REQUIRED_GOLD_KEYS if k not in g]
        if missing:
            raise GoldError(f"{path}:{n}: missing {', '.join(missing)}")
        if postings_dir is not None and not (postings_dir / g["file"].split("#", 1)[0]).exists():
            raise GoldError(f"{path}:{n}: {g['file']} not found under {postings_dir}")
        out.append(g)
    return out


def evaluate(postings_dir: Path, gold_path: Path, tax: Taxonomy, cache_dir: Path | None = None) -> Report:
    gold = load_gold(gold_path, postings_dir)
    files = sorted({g["file"].split("#", 1)[0] for g in gold})
    postings = []
    report = Report()
    for f in files:
        for item in read_path(str(postings_dir / f)):
            if isinstance(item, Reject):
                report.errors.append(f"{item.source}: rejected: {item.reason}")
            else:
                postings.append(item)
    prefix = str(postings_dir) + "/"
    preds = {r["source"][len(prefix):] if r["source"].startswith(prefix) else r["source"]: r for r in quick_extract(postings, tax, cache_dir)}
    for g in gold:
        report.n += 1
        p = preds.get(g["file"])
        if p is None:
            report.errors.append(f"{g['file']}: no prediction")
            p = {"role": {"id": "none"}, "certifications": [], "code_systems": [], "experience_years_min": None, "salary": None, "work_arrangement": None}
        f = g["file"]
        pred_target = p["role"]["id"] != "none"
        report.target.add({f} if g["is_target"] else set(), {f} if pred_target else set())
        ok_roles = {_role(r) for r in g.get("roles_ok") or [g["role"]]} | {_role(g["role"])}
        role_ok = _role(p["role"]["id"]) in ok_roles
        report.role.add(role_ok)
        if not role_ok:
            report.errors.append(f"{f}: role {p['role']['id']} not in {sorted(ok_roles)}")
        gc = {k: v for k, v in (g.get("certifications") or {}).items()}
        pc = {c["id"]: c["requirement"] for c in p["certifications"]}
        report.credentials.add(set(gc), set(pc))
        report.credentials_level.add(set(gc.items()), set(pc.items()))
        for k in set(gc) & set(pc):
            report.level_right.add(gc[k] == pc[k])
            if gc[k] != pc[k]:
                report.errors.append(f"{f}: {k} level {pc[k]} (gold {gc[k]})")
        for k in set(gc) ^ set(pc):
            report.errors.append(f"{f}: credential {k} {'missed' if k in gc else 'spurious'}")
        gs = {_sys(s) for s in g.get("code_systems") or []}
        ps = {_sys(s["id"]) for s in p["code_systems"] if s["id"] in GOLD_SYSTEMS}
        report.code_systems.add(gs, ps)
        for s in gs ^ ps:
            report.errors.append(f"{f}: code system {s} {'missed' if s in gs else 'spurious'}")
        yo = g.get("min_years_experience") == p.get("experience_years_min") or (
            g.get("min_years_experience") is not None and p.get("experience_years_min") is not None
            and abs(float(g["min_years_experience"]) - float(p["experience_years_min"])) < 0.01)
        report.years.add(yo)
        if not yo:
            report.errors.append(f"{f}: years {p.get('experience_years_min')} (gold {g.get('min_years_experience')})")
        so = _salary_eq(g.get("salary"), p.get("salary"))
        report.salary.add(so)
        if not so:
            ps_ = p.get("salary") or {}
            report.errors.append(f"{f}: salary {ps_.get('min')}-{ps_.get('max')}/{ps_.get('period')} {ps_.get('currency')} (gold {g.get('salary')})")
        ao = g.get("work_arrangement") == p.get("work_arrangement")
        report.arrangement.add(ao)
        if not ao:
            report.errors.append(f"{f}: arrangement {p.get('work_arrangement')} (gold {g.get('work_arrangement')})")
    return report
