"""Role classification (SQL over the extraction tables) and fit of a profile to each posting.

The role of a posting is decided in DuckDB from three kinds of evidence, all from the taxonomy:
the role title in the posting's title line (strongest, most specific alias wins), the weighted
credentials / code systems / skills the body asks for, and non-target signals (a nurse or
instructor title, law-firm vocabulary) that turn the answer into ``none``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import duckdb

from .profile import Profile
from .taxonomy import ROLE_CLASSIFICATION_KEYS
from .store import bulk_insert

ROLE_TYPES = {"posting_id": "VARCHAR", "role_id": "VARCHAR", "score": "DOUBLE", "is_target": "BOOLEAN", "alternatives": "JSON", "evidence": "JSON"}
MATCH_TYPES = {"profile_id": "VARCHAR", "posting_id": "VARCHAR", "score": "DOUBLE", "band": "VARCHAR", "met": "JSON", "missing": "JSON", "blockers": "JSON"}

ROLE_SQL = """
WITH
scope AS (SELECT posting_id FROM extractions WHERE posting_id IN (SELECT unnest($ids))),
lf AS (SELECT * FROM (VALUES ('required', $f_req), ('preferred', $f_pref), ('mentioned', $f_men), ('not_required', $f_not)) t(level, factor)),
body AS (
  SELECT i.posting_id, r.role_id, sum(r.weight * lf.factor) AS score,
         -- evidence that this is a billing/coding/HIM job at all: no soft skills, no generic
         -- management skills, no clinical licences
         coalesce(sum(r.weight * lf.factor) FILTER (WHERE NOT (
             (i.kind = 'skill' AND (coalesce(i.category, '') IN ('soft_skill', 'education', 'work_setting') OR list_contains($generic, i.item_id)))
             OR (i.kind = 'credential' AND t.category = 'clinical'))), 0) AS domain,
         list(DISTINCT i.kind || ' ' || i.item_id || ' (' || i.requirement || ')') AS items
  FROM extraction_items i
  JOIN scope USING (posting_id)
  JOIN tax_role_items r ON r.kind = i.kind AND r.item_id = i.item_id
  JOIN lf ON lf.level = i.requirement
  LEFT JOIN tax_terms t ON t.kind = i.kind AND t.term_id = i.item_id
  GROUP BY ALL),
title_raw AS (
  SELECT posting_id, signal_id AS role_id, n_tokens, text, list_contains($weak, lower(text)) AS weak
  FROM extraction_signals JOIN scope USING (posting_id)
  WHERE label = 'role_title' AND in_title),
title AS (
  SELECT t.posting_id, t.role_id, max(t.n_tokens) AS spec, arg_max(t.text, t.n_tokens) AS text
  FROM title_raw t LEFT JOIN body b ON b.posting_id = t.posting_id AND b.role_id = t.role_id
  WHERE NOT t.weak OR coalesce(b.domain, 0) >= $weak_title_min
  GROUP BY ALL),
title_best AS (SELECT posting_id, max(spec) AS spec FROM title GROUP BY 1),
body_title AS (
  SELECT posting_id, signal_id AS role_id, count(*) AS n
  FROM extraction_signals JOIN scope USING (posting_id)
  WHERE label = 'role_title' AND NOT in_title GROUP BY ALL),
nt_title AS (
  SELECT s.posting_id, max(s.n_tokens) AS spec, bool_or(coalesce(k.overrides, false)) AS overrides, arg_max(s.text, s.n_tokens) AS text
  FROM extraction_signals s JOIN scope USING (posting_id)
  LEFT JOIN (SELECT kind, bool_or(overrides_role_title) AS overrides FROM tax_non_target GROUP BY 1) k ON k.kind = s.signal_id
  WHERE s.label = 'non_target_title' AND s.in_title GROUP BY 1),
nt_ctx AS (
  SELECT posting_id, count(*) AS n, list(DISTINCT text) AS texts
  FROM extraction_signals JOIN scope USING (posting_id)
  WHERE label = 'non_target_context' GROUP BY 1),
scored AS (
  SELECT s.posting_id, r.role_id,
         coalesce(b.score, 0) AS body, coalesce(b.domain, 0) AS domain,
         CASE WHEN t.spec IS NOT NULL AND t.spec = tb.spec THEN $title_weight + t.spec ELSE 0 END AS title_score,
         least(coalesce(bt.n, 0), 3) * $body_title_weight AS body_title_score,
         t.text AS title_text, coalesce(b.items, []) AS items
  FROM scope s CROSS JOIN tax_roles r
  LEFT JOIN body b ON b.posting_id = s.posting_id AND b.role_id = r.role_id
  LEFT JOIN title t ON t.posting_id = s.posting_id AND t.role_id = r.role_id
  LEFT JOIN title_best tb ON tb.posting_id = s.posting_id
  LEFT JOIN body_title bt ON bt.posting_id = s.posting_id AND bt.role_id = r.role_id),
ranked AS (
  SELECT *, title_score + body + body_title_score AS score,
         row_number() OVER (PARTITION BY posting_id ORDER BY title_score + body + body_title_score DESC, role_id) AS rn
  FROM scored),
best AS (
  SELECT r.posting_id, r.role_id, r.score, r.body, r.domain, r.title_score, r.title_text, r.items,
         tb.spec AS title_spec, nt.spec AS nt_spec, nt.overrides AS nt_overrides, nt.text AS nt_text,
         coalesce(nc.n, 0) AS nt_ctx_n, nc.texts AS nt_ctx_texts
  FROM ranked r
  LEFT JOIN title_best tb USING (posting_id)
  LEFT JOIN nt_title nt USING (posting_id)
  LEFT JOIN nt_ctx nc USING (posting_id)
  WHERE rn = 1),
decided AS (
  SELECT *,
    CASE
      WHEN nt_spec IS NOT NULL AND (nt_overrides OR title_spec IS NULL OR nt_spec > title_spec) THEN false
      WHEN title_spec IS NOT NULL THEN NOT (nt_ctx_n >= $context_veto AND domain < $weak_title_min)
      ELSE domain >= $body_threshold AND NOT (nt_ctx_n >= $context_veto)
    END AS is_target
  FROM best),
alts AS (
  SELECT posting_id, list({'id': role_id, 'score': round(score, 2)} ORDER BY score DESC, role_id) AS alternatives
  FROM ranked WHERE rn BETWEEN 2 AND 4 AND score > 0 GROUP BY 1)
SELECT d.posting_id,
       CASE WHEN d.is_target THEN d.role_id ELSE 'none' END AS role_id,
       round(d.score, 2) AS score, d.is_target,
       coalesce(a.alternatives, []) AS alternatives,
       d.title_text, d.items, d.nt_text, d.nt_ctx_texts, d.role_id AS best_role, round(d.body, 2) AS body
FROM decided d LEFT JOIN alts a USING (posting_id)
ORDER BY d.posting_id
"""


def _params(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    row = con.execute("SELECT value FROM meta WHERE key = 'role_classification'").fetchone()
    params = json.loads(row[0]) if row and row[0] else {}
    missing = [k for k in ROLE_CLASSIFICATION_KEYS if k not in params]
    if missing:  # `taxonomy validate` reports this too; a store loaded from such a taxonomy cannot classify
        raise ValueError(f"cues.yaml role_classification lacks {', '.join(missing)}")
    return params


def classify_roles(con: duckdb.DuckDBPyConnection, posting_ids: Sequence[str] | None = None) -> int:
    """(Re)classify the given postings (all extracted postings when None) into posting_roles."""
    if posting_ids is None:
        posting_ids = [r[0] for r in con.execute("SELECT posting_id FROM extractions").fetchall()]
    ids = list(posting_ids)
    if not ids:
        return 0
    p = _params(con)
    f = p["level_factors"]
    rows = con.execute(
        ROLE_SQL,
        {
            "ids": ids, "f_req": f["required"], "f_pref": f["preferred"], "f_men": f["mentioned"], "f_not": f["not_required"],
            "title_weight": p["title_weight"], "body_title_weight": p["body_title_weight"],
            "body_threshold": p["body_threshold"], "context_veto": p["context_veto"],
            "weak_title_min": p["weak_title_min"], "weak": [w.lower() for w in p["weak_titles"]], "generic": list(p["generic_skills"]),
        },
    ).fetchall()
    out = []
    for pid, role_id, score, is_target, alternatives, title_text, items, nt_text, nt_ctx, best_role, body in rows:
        evidence: list[str] = []
        if nt_text and not is_target:
            evidence.append(f"title names a non-target job: '{nt_text}'")
        if nt_ctx and not is_target:
            evidence.append("non-target context: " + ", ".join(f"'{t}'" for t in sorted(nt_ctx)[:5]))
        if title_text:
            evidence.append(f"title '{title_text}' -> {best_role}")
        if items:
            evidence.append(f"body evidence for {best_role} ({body}): " + ", ".join(sorted(items)[:12]))
        if not is_target and not evidence:
            evidence.append(f"too little billing/coding evidence (best: {best_role} {body})")
        out.append({"posting_id": pid, "role_id": role_id, "score": score, "is_target": bool(is_target),
                    "alternatives": alternatives, "evidence": evidence})
    con.execute("DELETE FROM posting_roles WHERE posting_id IN (SELECT unnest(?))", [ids])
    bulk_insert(con, "posting_roles", list(ROLE_TYPES), out, ROLE_TYPES)
    return len(out)


# --- fit of a profile ----------------------------------------------------------------------

BANDS = ((75, "strong"), (55, "possible"), (35, "stretch"), (0, "not a fit"))


@dataclass
class Fit:
    profile_id: str
    posting_id: str
    score: float
    band: str
    met: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    blockers: list[dict[str, Any]] = field(default_factory=list)


def _band(score: float) -> str:
    return next(name for floor, name in BANDS if score >= floor)


def fit_posting(profile: Profile, posting: dict[str, Any], links: dict[str, dict[str, set[str]]]) -> Fit:
    """Score one posting (a JSON-contract record) for one profile. Documented in README "Scoring".

    Required items are gates: a missing required credential is a blocker and caps the score
    below "possible". ``any_of`` groups are met by any member. Credential equivalences come from
    the taxonomy (``implies``, ``satisfied_by``, ``apprentice_of``).
    """
    have_creds = profile.credential_closure(links)
    met: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    blockers: list[dict[str, Any]] = []
    req_total = req_met = 0.0
    pref_total = pref_met = 0.0
    seen_groups: set[tuple[str, ...]] = set()
    for cert in posting.get("certifications", []):
        level = cert["requirement"]
        if level in ("mentioned", "not_required"):
            continue
        group = tuple(cert["any_of"] or [cert["id"]])
        if group in seen_groups:
            continue
        seen_groups.add(group)
        ok = any(g in have_creds for g in group)
        item = {"kind": "credential", "id": " or ".join(group), "requirement": level, "evidence": cert.get("sentence") or cert["text"]}
        if level == "required":
            req_total += 2
            if ok:
                req_met += 2
            else:
                blockers.append(item)
        else:
            pref_total += 1
            pref_met += 1 if ok else 0
        (met if ok else missing).append(item)
    for key, kind in (("code_systems", "code_system"), ("skills", "skill")):
        for it in posting.get(key, []):
            level = it["requirement"]
            if level not in ("required", "preferred"):
                continue
            if kind == "skill":
                ok = it["id"] in profile.skills
            else:  # exact system; a generic "ICD-10" is met by any system of its family
                ok = it["id"] in profile.code_systems or (it["id"] == it.get("family") and it["id"] in profile.families)
            item = {"kind": kind, "id": it["id"], "requirement": level, "evidence": it.get("sentence") or it["text"]}
            if level == "required":
                req_total += 1
                req_met += 1 if ok else 0
            else:
                pref_total += 1
                pref_met += 1 if ok else 0
            (met if ok else missing).append(item)
    # experience: graded, one year short costs a third of the part
    need = posting.get("experience_years_min")
    exp_fit = 1.0
    if need:
        gap = max(0.0, float(need) - profile.experience_years)
        exp_fit = max(0.0, 1.0 - gap / 3.0)
        item = {"kind": "experience", "id": f"{need} years", "requirement": "required", "evidence": f"profile has {profile.experience_years:g}"}
        (met if gap == 0 else missing).append(item)
    edu_fit = 1.0
    need_edu = posting.get("education_min")
    if need_edu and profile.education:
        gap = profile.education_rank.get(need_edu, 0) - profile.education_rank.get(profile.education, 0)
        edu_fit = 1.0 if gap <= 0 else max(0.0, 1.0 - gap / 2.0)
        item = {"kind": "education", "id": need_edu, "requirement": "required", "evidence": f"profile has {profile.education}"}
        (met if gap <= 0 else missing).append(item)
    pay_fit = 1.0
    sal = posting.get("salary")
    if sal and profile.desired_annual and sal.get("annual_max"):
        if profile.currency and sal.get("currency") and sal["currency"] != profile.currency:
            # no exchange rates in an offline tool: say so rather than compare pounds with dollars
            missing.append({"kind": "pay", "id": f"offered in {sal['currency']}, wanted in {profile.currency}: not compared",
                            "requirement": "preferred", "evidence": sal.get("text", "")})
        else:
            pay_fit = min(1.0, float(sal["annual_max"]) / profile.desired_annual)
            item = {"kind": "pay", "id": f"{sal.get('annual_max'):,.0f} {sal.get('currency', '')}/year offered".replace("  ", " "),
                    "requirement": "preferred", "evidence": sal.get("text", "")}
            (met if pay_fit >= 1.0 else missing).append(item)
    arr_fit = 1.0
    arr = posting.get("work_arrangement")
    if arr and profile.work_arrangement:
        arr_fit = 1.0 if arr in profile.work_arrangement else 0.0
        item = {"kind": "work_arrangement", "id": arr, "requirement": "preferred", "evidence": arr}
        (met if arr_fit else missing).append(item)
    role_fit = 1.0
    role_id = posting.get("role", {}).get("id")
    if profile.roles_of_interest and role_id and role_id != "none":
        role_fit = 1.0 if role_id in profile.roles_of_interest else 0.0
        item = {"kind": "role", "id": role_id, "requirement": "preferred", "evidence": "roles of interest: " + ", ".join(profile.roles_of_interest)}
        (met if role_fit else missing).append(item)
    req_ratio = req_met / req_total if req_total else 1.0
    pref_ratio = pref_met / pref_total if pref_total else 1.0
    score = 100 * (0.40 * req_ratio + 0.15 * pref_ratio + 0.15 * exp_fit + 0.10 * edu_fit + 0.10 * pay_fit
                   + 0.05 * arr_fit + 0.05 * role_fit)
    if blockers:
        score = min(score, 50.0)
    if posting.get("role", {}).get("id") == "none":
        score = min(score, 20.0)
        blockers.append({"kind": "role", "id": "none", "requirement": "required", "evidence": "not a billing, coding or health-information job"})
    score = round(score, 1)
    return Fit(profile.profile_id, posting["posting_id"], score, _band(score), met, missing, blockers)


def credential_links(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, set[str]]]:
    links: dict[str, dict[str, set[str]]] = {}
    for cid, rel, other in con.execute("SELECT credential_id, relation, other_id FROM tax_credential_links").fetchall():
        links.setdefault(rel, {}).setdefault(cid, set()).add(other)
    return links


def save_fits(con: duckdb.DuckDBPyConnection, fits: Sequence[Fit]) -> None:
    if not fits:
        return
    con.execute("DELETE FROM matches WHERE profile_id = ?", [fits[0].profile_id])
    rows = ({"profile_id": f.profile_id, "posting_id": f.posting_id, "score": f.score, "band": f.band,
             "met": f.met, "missing": f.missing, "blockers": f.blockers} for f in fits)
    bulk_insert(con, "matches", list(MATCH_TYPES), rows, MATCH_TYPES)
