"""Fit of profiles to postings, scored in DuckDB SQL: one profile or a thousand, ten postings or 100,000.

Why SQL and why bit masks: a recruiter batch is every profile against every posting (1,000 ×
100,000 = 10^8 pairs). Joining item rows pair by pair would make hundreds of millions of
intermediate rows; instead every distinct requested item ("unit": one credential, an any_of group,
a code system, a skill) that some profile can earn credit for gets a bit, each posting gets bit
masks of the units it requires / prefers, each profile masks of the units it holds, and a pair's
credit is a handful of ``bit_count(a & b)`` on 64-bit words — a cross join DuckDB runs vectorised
on every core. The same SQL scores `jobfit score` (one profile, one posting), so there is one
formula. The explanation (met / missing / blockers with evidence) is built afterwards, by a join,
only for the pairs that are kept.

The numbers come from skill_taxonomy/fit.yaml; README "Scoring" documents the formula.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import duckdb

from .profile import Profile
from .store import bulk_insert
from .taxonomy import Taxonomy

KINDS = ("credential", "code_system", "skill")
LEVELS = (("rq", "required"), ("pf", "preferred"))
MATCH_COLUMNS = ("profile_id", "posting_id", "score", "band", "met", "missing", "blockers", "components", "rank_in_profile", "rank_in_posting")
_SHIFT = 1 << 32  # sort key = score*10 in the high bits, a tie-break index in the low bits


@dataclass
class Fit:
    """One (profile, posting) result, as stored in the matches table."""

    profile_id: str
    posting_id: str
    score: float
    band: str
    met: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    blockers: list[dict[str, Any]] = field(default_factory=list)
    components: dict[str, Any] = field(default_factory=dict)
    rank_in_profile: int | None = None
    rank_in_posting: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id, "posting_id": self.posting_id, "score": self.score, "band": self.band,
                "components": self.components, "met": self.met, "missing": self.missing, "blockers": self.blockers}


# --- inputs --------------------------------------------------------------------------------


def _load_profiles(con: duckdb.DuckDBPyConnection, profiles: Sequence[Profile], tax: Taxonomy) -> None:
    rank = {t.id: int(t.extra.get("rank") or 0) for t in tax.terms["education"].values()}
    rows, items = [], []
    for i, p in enumerate(profiles):
        rows.append({"ppidx": i, "profile_id": p.profile_id, "years_total": p.experience_years,
                     "years_coding": p.experience.get("coding"), "years_billing": p.experience.get("billing"),
                     "years_inpatient": p.experience.get("inpatient"), "edu_rank": rank.get(p.education) if p.education else None,
                     "desired": p.desired_annual, "currency": p.currency, "arrangements": p.work_arrangement,
                     "roles": p.roles_of_interest, "locations": p.locations,
                     "loc_parts": sorted({x.strip().lower() for loc in p.locations for x in loc.split(",") if x.strip()})})
        items += [{"ppidx": i, "item_key": k, "credit": c, "origin": o, "status": st} for k, c, o, st in p.items(tax)]
    con.execute("""CREATE OR REPLACE TEMP TABLE fit_profiles (ppidx INTEGER, profile_id VARCHAR, years_total DOUBLE,
        years_coding DOUBLE, years_billing DOUBLE, years_inpatient DOUBLE, edu_rank INTEGER, desired DOUBLE,
        currency VARCHAR, arrangements VARCHAR[], roles VARCHAR[], locations VARCHAR[], loc_parts VARCHAR[])""")
    types = {"ppidx": "INTEGER", "profile_id": "VARCHAR", "years_total": "DOUBLE", "years_coding": "DOUBLE",
             "years_billing": "DOUBLE", "years_inpatient": "DOUBLE", "edu_rank": "INTEGER", "desired": "DOUBLE",
             "currency": "VARCHAR", "arrangements": "VARCHAR[]", "roles": "VARCHAR[]", "locations": "VARCHAR[]", "loc_parts": "VARCHAR[]"}
    bulk_insert(con, "fit_profiles", list(types), rows, types)
    con.execute("CREATE OR REPLACE TEMP TABLE fit_profile_items (ppidx INTEGER, item_key VARCHAR, credit DOUBLE, origin VARCHAR, status VARCHAR)")
    bulk_insert(con, "fit_profile_items", ["ppidx", "item_key", "credit", "origin", "status"], items,
                {"ppidx": "INTEGER", "item_key": "VARCHAR", "credit": "DOUBLE", "origin": "VARCHAR", "status": "VARCHAR"})


def _load_units(con: duckdb.DuckDBPyConnection, posting_ids: Sequence[str] | None, tax: Taxonomy) -> None:
    """Requested items per posting, one row per unit; then what satisfies each distinct unit."""
    scope = "SELECT posting_id FROM extractions" + ("" if posting_ids is None else " WHERE posting_id IN (SELECT unnest($ids))")
    params: dict[str, Any] = {} if posting_ids is None else {"ids": list(posting_ids)}
    con.execute(f"CREATE OR REPLACE TEMP TABLE fit_scope AS {scope}", params)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE fit_units AS
    WITH items AS (
      SELECT i.posting_id, i.kind,
             CASE WHEN i.kind = 'credential' AND len(coalesce(i.any_of, [])) > 0 THEN list_sort(list_distinct(i.any_of))
                  ELSE [i.item_id] END AS grp,
             i.requirement, coalesce(nullif(i.sentence, ''), i.text) AS evidence, i.text, i.start_char
      FROM extraction_items i JOIN fit_scope USING (posting_id)
      WHERE i.requirement IN ('required', 'preferred') AND i.kind IN ('credential', 'code_system', 'skill')
        AND NOT (i.kind = 'skill' AND list_contains($unscored, coalesce(i.category, '')))),
    -- a posting that names an apprentice credential (CPC-A) accepts apprentices
    appr AS (
      SELECT DISTINCT i.posting_id FROM extraction_items i JOIN fit_scope USING (posting_id)
      JOIN tax_credential_links l ON l.relation = 'apprentice_of' AND l.credential_id = i.item_id
      WHERE i.kind = 'credential' AND i.requirement <> 'not_required'),
    units AS (
      SELECT posting_id, kind, grp,
             CASE WHEN bool_or(requirement = 'required') THEN 'required' ELSE 'preferred' END AS level,
             arg_min(evidence, start_char) AS evidence, arg_min(text, start_char) AS match_text, min(start_char) AS first_char
      FROM items GROUP BY posting_id, kind, grp)
    SELECT u.posting_id, u.kind, u.grp, u.level, u.evidence, u.match_text, u.first_char,
           (u.kind = 'credential' AND a.posting_id IS NOT NULL) AS apprentices_ok,
           u.kind || ':' || array_to_string(u.grp, '|')
             || CASE WHEN u.kind = 'credential' AND a.posting_id IS NOT NULL THEN '+apprentices' ELSE '' END AS unit_key
    FROM units u LEFT JOIN appr a USING (posting_id)""", {"unscored": list(tax.fit.get("unscored_skill_categories") or [])})
    credit = tax.fit["credit"]
    con.execute("""
    CREATE OR REPLACE TEMP TABLE fit_unit_members AS
    WITH u AS (SELECT DISTINCT unit_key, kind, grp, apprentices_ok FROM fit_units),
    m AS (SELECT unit_key, kind, apprentices_ok, unnest(grp) AS member FROM u)
    SELECT unit_key, kind || ':' || member AS item_key, 1.0::DOUBLE AS mult FROM m
    UNION ALL  -- a generic ask ("an AAPC or AHIMA credential") is met by the credentials that satisfy it
    SELECT m.unit_key, 'credential:' || l.other_id, 1.0::DOUBLE FROM m
      JOIN tax_credential_links l ON m.kind = 'credential' AND l.credential_id = m.member AND l.relation = 'satisfied_by'
    UNION ALL  -- a family-level ask (plain "ICD-10") is met by any system of the family
    SELECT m.unit_key, 'code_system:' || t.term_id, 1.0::DOUBLE FROM m
      JOIN tax_terms t ON m.kind = 'code_system' AND t.kind = 'code_system' AND t.family = m.member AND t.term_id <> m.member
    UNION ALL  -- an apprentice of an asked-for credential: full credit only where the posting names the apprentice credential
    SELECT unit_key, 'apprentice:' || member, (CASE WHEN apprentices_ok THEN $acc ELSE $notacc END)::DOUBLE FROM m WHERE kind = 'credential'
    """, {"acc": float(credit["apprentice_accepted"]), "notacc": float(credit["apprentice_not_accepted"])})
    con.execute("""
    CREATE OR REPLACE TEMP TABLE fit_unit_credit AS
    SELECT p.ppidx, m.unit_key, max(p.credit * m.mult) AS credit,
           arg_max(p.item_key, p.credit * m.mult) AS via, arg_max(p.origin, p.credit * m.mult) AS origin,
           -- held today (not only studied for): a required credential held only "in progress" still blocks
           bool_or(p.status <> 'in_progress') AS settled
    FROM fit_profile_items p JOIN fit_unit_members m USING (item_key)
    WHERE p.credit * m.mult > 0
    GROUP BY p.ppidx, m.unit_key""")


def _word_layout(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], list[float]]:
    """Give each creditable unit a bit, per kind; return words per kind and the partial credit levels."""
    con.execute("""
    CREATE OR REPLACE TEMP TABLE fit_bits AS
    SELECT unit_key, kind, (row_number() OVER (PARTITION BY kind ORDER BY unit_key) - 1)::INTEGER AS idx
    FROM (SELECT DISTINCT unit_key, split_part(unit_key, ':', 1) AS kind FROM fit_unit_credit)""")
    words = {k: 0 for k in KINDS}
    for kind, n in con.execute("SELECT kind, max(idx) + 1 FROM fit_bits GROUP BY 1").fetchall():
        words[kind] = (int(n) + 63) // 64
    partial = [float(r[0]) for r in con.execute(
        "SELECT DISTINCT credit FROM fit_unit_credit WHERE credit < 1 ORDER BY 1").fetchall()]
    return words, partial


def _mask(cond: str, kind: str, w: int) -> str:
    return (f"coalesce(bit_or(CASE WHEN {cond} AND b.kind = '{kind}' AND b.idx // 64 = {w} "
            f"THEN (1::UBIGINT << (b.idx % 64)) END), 0::UBIGINT)")


def _load_feature_tables(con: duckdb.DuckDBPyConnection, tax: Taxonomy, words: dict[str, int], partial: list[float]) -> None:
    fit = tax.fit
    iw = fit["item_weights"]
    weight_case = "CASE u.kind " + " ".join(f"WHEN '{k}' THEN {float(iw[k])}" for k in KINDS) + " ELSE 0 END"
    posting_masks = [f"{_mask(f'u.level = {lvl!r}', k, w)} AS {ab}_{k}_{w}"
                     for ab, lvl in LEVELS for k in KINDS for w in range(words[k])]
    areas = fit["experience_areas"]
    by_role = areas.get("by_role") or {}
    area_case = ("CASE " + " ".join(f"WHEN r.role_id = '{rid}' THEN '{area}'" for rid, area in sorted(by_role.items()))
                 + " ELSE NULL END") if by_role else "NULL"
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE fit_postings AS
    WITH um AS (
      SELECT s.posting_id,
             coalesce(sum({weight_case}) FILTER (WHERE u.level = 'required'), 0) AS req_total,
             coalesce(sum({weight_case}) FILTER (WHERE u.level = 'preferred'), 0) AS pref_total,
             count(*) FILTER (WHERE u.level = 'required' AND u.kind = 'credential') AS n_req_cred,
             coalesce(bool_or(u.kind = 'skill' AND list_has_any(u.grp, $inpatient)), false) AS inpatient
             {''.join(', ' + m for m in posting_masks)}
      FROM fit_scope s LEFT JOIN fit_units u USING (posting_id) LEFT JOIN fit_bits b USING (unit_key)
      GROUP BY s.posting_id)
    SELECT (row_number() OVER (ORDER BY um.posting_id) - 1)::INTEGER AS qidx, um.*,
           e.experience_years_min AS years_min, ed.rank AS edu_need, e.annual_max, e.salary_currency AS currency,
           e.work_arrangement AS arrangement, coalesce(r.role_id, 'none') AS role_id, coalesce(r.is_target, false) AS is_target,
           po.location, string_split_regex(trim(lower(coalesce(po.location, ''))), '\\s*,\\s*') AS loc_parts,
           CASE WHEN um.inpatient THEN 'inpatient' ELSE {area_case} END AS area
    FROM um JOIN extractions e USING (posting_id) JOIN postings po USING (posting_id)
    LEFT JOIN posting_roles r USING (posting_id)
    LEFT JOIN tax_terms ed ON ed.kind = 'education' AND ed.term_id = e.education_min
    """, {"inpatient": list(areas.get("inpatient_skills") or [])})
    prof_masks = []
    for k in KINDS:
        for w in range(words[k]):
            prof_masks.append(f"{_mask('c.credit >= 1', k, w)} AS full_{k}_{w}")
            if k == "credential":
                prof_masks.append(f"{_mask('c.settled', k, w)} AS settled_{k}_{w}")
            for j, v in enumerate(partial):
                prof_masks.append(f"{_mask(f'c.credit = {v!r}', k, w)} AS part{j}_{k}_{w}")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE fit_profile_masks AS
    SELECT p.* {''.join(', ' + m for m in prof_masks)}
    FROM fit_profiles p LEFT JOIN fit_unit_credit c USING (ppidx) LEFT JOIN fit_bits b USING (unit_key)
    GROUP BY ALL""")


def _score_expr(tax: Taxonomy, words: dict[str, int], partial: list[float]) -> str:
    """The score of one (profile r, posting p) pair as a SQL expression, plus its components."""
    fit, iw, comps = tax.fit, tax.fit["item_weights"], tax.fit["components"]

    def credit(ab: str) -> str:
        terms = []
        for k in KINDS:
            parts = [f"bit_count(p.{ab}_{k}_{w} & r.full_{k}_{w})" for w in range(words[k])]
            for j, v in enumerate(partial):
                parts += [f"{v!r} * bit_count(p.{ab}_{k}_{w} & r.part{j}_{k}_{w})" for w in range(words[k])]
            if parts:
                terms.append(f"{float(iw[k])!r} * ({' + '.join(parts)})")
        return " + ".join(terms) or "0"

    cred_any = [f"bit_count(p.rq_credential_{w} & r.settled_credential_{w})" for w in range(words["credential"])]
    any_held = " + ".join(cred_any) or "0"
    g_years, g_edu = float(fit["experience_grace_years"]), float(fit["education_grace_levels"])
    return f"""
      CASE WHEN p.pref_total > 0 THEN ({credit('pf')}) / p.pref_total WHEN p.req_total > 0 THEN 1.0
           ELSE {float(fit['unstated_items_fit'])!r} END AS f_preferred,
      -- with nothing marked required, the preferred items stand in: silence is not a perfect fit
      CASE WHEN p.req_total > 0 THEN ({credit('rq')}) / p.req_total ELSE f_preferred END AS f_required,
      p.req_total + p.pref_total = 0 AS unstated,
      (p.n_req_cred - ({any_held}))::INTEGER AS n_blockers,
      CASE p.area WHEN 'coding' THEN coalesce(r.years_coding, r.years_total) WHEN 'billing' THEN coalesce(r.years_billing, r.years_total)
                  WHEN 'inpatient' THEN coalesce(r.years_inpatient, r.years_total) ELSE r.years_total END AS years_have,
      CASE p.area WHEN 'coding' THEN r.years_coding WHEN 'billing' THEN r.years_billing WHEN 'inpatient' THEN r.years_inpatient
                  ELSE NULL END IS NOT NULL AS years_area_known,
      CASE WHEN coalesce(p.years_min, 0) = 0 THEN 1.0
           ELSE greatest(0.0, 1.0 - greatest(0.0, p.years_min - years_have) / {g_years!r}) END AS f_experience,
      CASE WHEN p.edu_need IS NULL THEN 1.0 WHEN r.edu_rank IS NULL THEN {float(fit['unstated_items_fit'])!r}
           ELSE greatest(0.0, 1.0 - greatest(0, p.edu_need - r.edu_rank) / {g_edu!r}) END AS f_education,
      CASE WHEN p.annual_max IS NULL OR r.desired IS NULL OR r.desired = 0 THEN 1.0
           WHEN coalesce(p.currency, r.currency) <> r.currency THEN 1.0
           ELSE least(1.0, p.annual_max / r.desired) END AS f_pay,
      -- where the work is: a job outside the profile's locations (same city or region), or one that
      -- pays in another currency, is not reachable unless it is remote
      CASE WHEN p.arrangement = 'remote' OR len(r.loc_parts) = 0 THEN NULL
           WHEN p.location IS NOT NULL THEN list_has_any(p.loc_parts, r.loc_parts)
           WHEN p.currency IS NOT NULL AND r.currency IS NOT NULL AND p.currency <> r.currency THEN false
           ELSE NULL END AS loc_ok,
      CASE WHEN loc_ok = false THEN 0.0
           WHEN p.arrangement IS NULL OR len(r.arrangements) = 0 THEN 1.0
           WHEN list_contains(r.arrangements, p.arrangement) THEN 1.0 ELSE 0.0 END AS f_arrangement,
      CASE WHEN len(r.roles) = 0 OR NOT p.is_target THEN 1.0
           WHEN list_contains(r.roles, p.role_id) THEN 1.0 ELSE 0.0 END AS f_role,
      100.0 * ({comps['required']!r} * f_required + {comps['preferred']!r} * f_preferred + {comps['experience']!r} * f_experience
               + {comps['education']!r} * f_education + {comps['pay']!r} * f_pay + {comps['arrangement']!r} * f_arrangement
               + {comps['role']!r} * f_role) AS raw,
      -- every cap that applies; the lowest wins (DuckDB's least() skips NULLs)
      CASE WHEN NOT p.is_target THEN {float(fit['non_target_cap'])!r} END::DOUBLE AS cap_nt,
      CASE WHEN n_blockers > 0 THEN {float(fit['blocker_cap'])!r} END::DOUBLE AS cap_block,
      CASE WHEN f_required < {float(fit['weak_required']['below'])!r} THEN round({float(fit['weak_required']['floor'])!r} + {float(fit['weak_required']['slope'])!r} * f_required, 1)
           END::DOUBLE AS cap_weak,
      CASE WHEN f_arrangement = 0 THEN {float(fit['unreachable_cap'])!r} END::DOUBLE AS cap_where,
      CASE WHEN f_role = 0 THEN {float(fit['off_interest_cap'])!r} END::DOUBLE AS cap_role,
      least(cap_nt, cap_block, cap_weak, cap_where, cap_role) AS cap,
      CASE WHEN cap IS NULL THEN NULL WHEN cap = cap_nt THEN 'not a billing, coding or HIM job'
           WHEN cap = cap_weak THEN 'meets under half of the required items'
           WHEN cap = cap_block THEN 'a required credential is missing'
           WHEN cap = cap_where THEN CASE WHEN loc_ok = false THEN 'on-site work outside the profile''s locations' ELSE 'work arrangement not accepted' END
           ELSE 'role not among the roles of interest' END AS cap_reason,
      round(CASE WHEN cap IS NULL THEN raw ELSE least(raw, cap) END, 1) AS score"""


# --- scoring -------------------------------------------------------------------------------


@dataclass
class FitRun:
    """What a scoring pass kept: pairs stored, pairs scored, and per-profile counts by band."""

    n_profiles: int
    n_postings: int
    n_pairs: int
    n_kept: int


def score_all(con: duckdb.DuckDBPyConnection, profiles: Sequence[Profile], tax: Taxonomy, *,
              posting_ids: Sequence[str] | None = None, top: int | None = None, top_per_posting: int | None = None,
              store: bool = True) -> FitRun:
    """Score every profile against every (given) posting; keep all pairs, or the top ``top`` per
    profile plus the top ``top_per_posting`` per posting; store them in ``matches`` (replacing
    these profiles' earlier matches) or leave them in the temp table ``fit_kept``.

    Ties are broken by posting id (per profile) and profile id (per posting), so the kept set is
    the same on every run and with any number of threads.
    """
    if not profiles:
        return FitRun(0, 0, 0, 0)
    ids = [p.profile_id for p in profiles]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"two profiles share the id {dup[0]!r} (profile ids are file names without the extension)")
    _load_profiles(con, profiles, tax)
    _load_units(con, posting_ids, tax)
    words, partial = _word_layout(con)
    _load_feature_tables(con, tax, words, partial)
    n_post = con.execute("SELECT count(*) FROM fit_postings").fetchone()[0]
    expr = _score_expr(tax, words, partial)
    pairs = f"SELECT r.ppidx, p.qidx, p.is_target, {expr} FROM fit_profile_masks r CROSS JOIN fit_postings p"
    if top is None and top_per_posting is None:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE fit_kept AS
            SELECT ppidx, qidx, score, NULL::INTEGER AS rank_in_profile, NULL::INTEGER AS rank_in_posting FROM ({pairs})""")
    else:
        # max(key, n) keeps the n largest keys; the low 32 bits break ties by index (smaller id first)
        parts = []
        if top:
            parts.append(f"""SELECT ppidx, (({_SHIFT - 1} - (k % {_SHIFT})))::INTEGER AS qidx, (k // {_SHIFT}) / 10.0 AS score,
                                 i::INTEGER AS rank_in_profile, NULL::INTEGER AS rank_in_posting
                          FROM (SELECT ppidx, unnest(ks) AS k, generate_subscripts(ks, 1) AS i
                                FROM (SELECT ppidx, max(round(score * 10)::BIGINT * {_SHIFT} + ({_SHIFT - 1} - qidx), {int(top)}) AS ks
                                      FROM ({pairs}) GROUP BY ppidx))""")
        if top_per_posting:
            parts.append(f"""SELECT (({_SHIFT - 1} - (k % {_SHIFT})))::INTEGER AS ppidx, qidx, (k // {_SHIFT}) / 10.0 AS score,
                                 NULL::INTEGER AS rank_in_profile, i::INTEGER AS rank_in_posting
                          FROM (SELECT qidx, unnest(ks) AS k, generate_subscripts(ks, 1) AS i
                                FROM (SELECT qidx, max(round(score * 10)::BIGINT * {_SHIFT} + ({_SHIFT - 1} - ppidx), {int(top_per_posting)}) AS ks
                                      FROM ({pairs}) WHERE is_target GROUP BY qidx))""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE fit_kept AS
            SELECT ppidx, qidx, any_value(score) AS score, min(rank_in_profile) AS rank_in_profile, min(rank_in_posting) AS rank_in_posting
            FROM ({' UNION ALL '.join(parts)}) GROUP BY ppidx, qidx""")
    # the components of the kept pairs, from the same expression
    con.execute(f"""CREATE OR REPLACE TEMP TABLE fit_kept_full AS
        SELECT k.rank_in_profile, k.rank_in_posting, r.ppidx, p.qidx, r.profile_id, p.posting_id, p.years_min, p.edu_need,
               p.annual_max, p.currency AS p_currency, p.arrangement, p.role_id, p.is_target, p.area, r.desired,
               r.currency AS r_currency, r.edu_rank, r.arrangements, r.roles, p.location AS p_location, r.locations, {expr}
        FROM fit_kept k JOIN fit_profile_masks r ON r.ppidx = k.ppidx JOIN fit_postings p ON p.qidx = k.qidx""")
    n_kept = con.execute("SELECT count(*) FROM fit_kept_full").fetchone()[0]
    if store:
        _store(con, tax, ids)
    return FitRun(len(profiles), int(n_post), len(profiles) * int(n_post), int(n_kept))


_ITEM = "{{'kind': {kind}, 'id': {id}, 'requirement': {req}, 'evidence': {ev}, 'text': NULL::VARCHAR, 'credit': NULL::DOUBLE, 'note': NULL::VARCHAR}}"


def _explain(con: duckdb.DuckDBPyConnection, tax: Taxonomy) -> None:
    """Met / missing / blockers with the posting's own sentence, the components and the band for
    every kept pair, all in SQL (``fit_explained``): at recruiter scale there are half a million
    kept pairs, and a Python loop over them would cost more than scoring all 10^8 pairs."""
    comps = tax.fit["components"]
    names = ("required", "preferred", "experience", "education", "pay", "arrangement", "role")
    comp_struct = ", ".join(
        f"'{n}': {{'weight': {float(comps[n])!r}, 'fit': round(f_{n}, 3), 'points': round({100 * float(comps[n])!r} * f_{n}, 1)}}"
        for n in names)
    band_case = "CASE " + " ".join(f"WHEN score >= {float(b['min'])!r} THEN '{b['name']}'" for b in tax.fit["bands"]) + \
        f" ELSE '{tax.fit['bands'][-1]['name']}' END"
    exp = _ITEM.format(kind="'experience'", id="format('{:g}+ years', years_min) || coalesce(' (' || area || ')', '')", req="'required'",
                       ev="format('profile has {:g} years', years_have) || CASE WHEN years_area_known THEN ' of ' || area "
                          "WHEN area IS NOT NULL THEN ' in all (no ' || area || ' years given)' ELSE '' END")
    edu = _ITEM.format(kind="'education'", id="coalesce(need_name, CAST(edu_need AS VARCHAR))", req="'required'",
                       ev="coalesce('profile has ' || coalesce(have_name, CAST(edu_rank AS VARCHAR)), 'the profile gives no education: counts in part')")
    pay_ok = _ITEM.format(kind="'pay'", id="format('up to {:,.0f} {}/year offered', annual_max, coalesce(p_currency, ''))", req="'preference'",
                          ev="format('profile wants {:,.0f} {}/year', desired, coalesce(r_currency, ''))")
    pay_fx = _ITEM.format(kind="'pay'", id="format('offered in {}, wanted in {}: not compared', p_currency, r_currency)", req="'preference'",
                          ev="'jobfit has no exchange rates'")
    arr = _ITEM.format(kind="'work_arrangement'", id="arrangement", req="'preference'", ev="'profile accepts ' || array_to_string(arrangements, ', ')")
    unstated = _ITEM.format(kind="'requirements'", id="'none stated'", req="'required'",
                            ev="'the posting marks nothing as required or preferred that a profile can show, so those parts count in part'")
    loc = _ITEM.format(kind="'location'", id="coalesce(p_location, 'pays in ' || p_currency)", req="'preference'",
                       ev="'profile locations: ' || array_to_string(locations, '; ')")
    role = _ITEM.format(kind="'role'", id="role_id", req="'preference'", ev="'roles of interest: ' || array_to_string(roles, ', ')")
    none = _ITEM.format(kind="'role'", id="'not a billing, coding or HIM job'", req="'required'",
                        ev="'the posting is classified as none of the ten roles'")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE fit_explained AS
    WITH u AS (
      SELECT k.ppidx, k.qidx, u.kind, u.level, u.first_char, array_to_string(u.grp, ' or ') AS id, u.evidence, u.match_text,
             coalesce(c.credit, 0.0) AS credit, c.via, c.origin, coalesce(c.settled, false) AS settled, u.grp
      FROM fit_kept_full k JOIN fit_units u USING (posting_id)
      LEFT JOIN fit_unit_credit c ON c.ppidx = k.ppidx AND c.unit_key = u.unit_key),
    items AS (
      SELECT *, {{'kind': kind, 'id': id, 'requirement': level, 'evidence': evidence, 'text': match_text, 'credit': round(credit, 2)::DOUBLE,
                 'note': CASE
                    WHEN credit = 0 THEN NULL
                    WHEN NOT settled AND level = 'required' THEN origin || ' in progress: counts in part, and a required credential still blocks'
                    WHEN NOT settled THEN origin || ' in progress: counts in part'
                    WHEN via LIKE 'apprentice:%' AND credit < 1 THEN origin || ' is the apprentice credential and this posting does not name it: counts in part'
                    WHEN via LIKE 'apprentice:%' THEN origin || ', the apprentice credential, which this posting accepts'
                    WHEN NOT list_contains(grp, origin) THEN 'met by ' || origin
                    ELSE NULL END}} AS item
      FROM u),
    lists AS (
      SELECT ppidx, qidx,
             list(item ORDER BY first_char, kind, id) FILTER (WHERE credit >= 1) AS met,
             list(item ORDER BY first_char, kind, id) FILTER (WHERE credit < 1) AS missing,
             list(item ORDER BY first_char, kind, id) FILTER (WHERE NOT settled AND kind = 'credential' AND level = 'required') AS blockers
      FROM items GROUP BY ppidx, qidx),
    k AS (
      SELECT k.*, coalesce(l.met, []) AS u_met, coalesce(l.missing, []) AS u_missing, coalesce(l.blockers, []) AS u_blockers,
             en.term_id AS need_name, eh.term_id AS have_name
      FROM fit_kept_full k LEFT JOIN lists l USING (ppidx, qidx)
      LEFT JOIN tax_terms en ON en.kind = 'education' AND en.rank = k.edu_need
      LEFT JOIN tax_terms eh ON eh.kind = 'education' AND eh.rank = k.edu_rank),
    x AS (
      SELECT *,
        CASE WHEN coalesce(years_min, 0) > 0 THEN [{exp}] ELSE [] END AS i_exp,
        CASE WHEN edu_need IS NOT NULL THEN [{edu}] ELSE [] END AS i_edu,
        CASE WHEN annual_max IS NULL OR desired IS NULL OR desired = 0 THEN []
             WHEN p_currency IS NOT NULL AND r_currency IS NOT NULL AND p_currency <> r_currency THEN [{pay_fx}]
             ELSE [{pay_ok}] END AS i_pay,
        CASE WHEN arrangement IS NOT NULL AND len(arrangements) > 0 THEN [{arr}] ELSE [] END AS i_arr,
        CASE WHEN loc_ok IS NOT NULL THEN [{loc}] ELSE [] END AS i_loc,
        CASE WHEN len(roles) > 0 AND is_target THEN [{role}] ELSE [] END AS i_role
      FROM k)
    SELECT profile_id, posting_id, score, {band_case} AS band,
           to_json(list_concat(u_met, CASE WHEN f_experience >= 1 THEN i_exp ELSE [] END, CASE WHEN f_education >= 1 THEN i_edu ELSE [] END,
                               CASE WHEN f_pay >= 1 AND NOT coalesce(p_currency <> r_currency, false) THEN i_pay ELSE [] END,
                               CASE WHEN f_arrangement >= 1 THEN i_arr ELSE [] END, CASE WHEN loc_ok THEN i_loc ELSE [] END,
                               CASE WHEN f_role >= 1 THEN i_role ELSE [] END)) AS met,
           to_json(list_concat(u_missing, CASE WHEN unstated THEN [{unstated}] ELSE [] END, CASE WHEN f_experience < 1 THEN i_exp ELSE [] END, CASE WHEN f_education < 1 THEN i_edu ELSE [] END,
                               CASE WHEN f_pay < 1 OR coalesce(p_currency <> r_currency, false) THEN i_pay ELSE [] END,
                               CASE WHEN f_arrangement < 1 AND coalesce(loc_ok, true) THEN i_arr ELSE [] END,
                               CASE WHEN NOT loc_ok THEN i_loc ELSE [] END, CASE WHEN f_role < 1 THEN i_role ELSE [] END)) AS missing,
           to_json(list_concat(u_blockers, CASE WHEN NOT is_target THEN [{none}] ELSE [] END)) AS blockers,
           to_json({{{comp_struct}, 'total_before_cap': round(raw, 1), 'cap': cap, 'cap_reason': cap_reason}}) AS components,
           rank_in_profile, rank_in_posting
    FROM x ORDER BY profile_id, posting_id""")


def _store(con: duckdb.DuckDBPyConnection, tax: Taxonomy, profile_ids: list[str]) -> None:
    _explain(con, tax)
    con.execute("DELETE FROM matches WHERE profile_id IN (SELECT unnest(?))", [profile_ids])
    con.execute(f"INSERT INTO matches ({', '.join(MATCH_COLUMNS)}) SELECT {', '.join(MATCH_COLUMNS)} FROM fit_explained")


def _fit_of(row: tuple[Any, ...]) -> Fit:
    d = dict(zip(MATCH_COLUMNS, row))
    for k in ("met", "missing", "blockers", "components"):
        d[k] = json.loads(d[k]) if d[k] else ([] if k != "components" else {})
    return Fit(**d)


def kept_fits(con: duckdb.DuckDBPyConnection, tax: Taxonomy) -> list[Fit]:
    """The explained results of the last :func:`score_all` in this connection (``store=False``)."""
    _explain(con, tax)
    return [_fit_of(r) for r in con.execute(f"SELECT {', '.join(MATCH_COLUMNS)} FROM fit_explained").fetchall()]


def stored_fits(con: duckdb.DuckDBPyConnection, profile_id: str) -> dict[str, Fit]:
    rows = con.execute(f"SELECT {', '.join(MATCH_COLUMNS)} FROM matches WHERE profile_id = ?", [profile_id]).fetchall()
    return {r[1]: _fit_of(r) for r in rows}
