"""Role classification: SQL over the extraction tables (the fit of profiles is pipeline/fit.py).

The role of a posting is decided in DuckDB from three kinds of evidence, all from the taxonomy:
the role title in the posting's title line (strongest, most specific alias wins), the weighted
credentials / code systems / skills the body asks for, and non-target signals (a nurse or
instructor title, law-firm vocabulary) that turn the answer into ``none``.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import duckdb

from .taxonomy import ROLE_CLASSIFICATION_KEYS
from .store import bulk_insert

ROLE_TYPES = {"posting_id": "VARCHAR", "role_id": "VARCHAR", "score": "DOUBLE", "is_target": "BOOLEAN", "alternatives": "JSON", "evidence": "JSON"}

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
