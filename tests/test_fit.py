"""Profile fit, scored by the SQL in pipeline/fit.py: gates, equivalences, graded parts, top N."""

from __future__ import annotations

import pytest

from pipeline.fit import score_all, stored_fits
from pipeline.ingest import Posting, normalize_text
from pipeline.profile import load_profile
from pipeline.runner import open_context, ingest, extract_pending, match, score
from tests.conftest import PROFILES, SAMPLES


def _posting(text: str, pid: str = "t") -> Posting:
    body = normalize_text(text)
    return Posting(pid, "inline", body.split("\n", 1)[0], body, "text")


@pytest.fixture
def fit_of(tmp_path, tax):
    """Score inline posting text against an inline YAML profile; returns the Fit."""
    n = [0]

    def run(profile_yaml: str, text: str):
        n[0] += 1
        path = tmp_path / f"p{n[0]}.yaml"
        path.write_text(profile_yaml)
        _, results = score([_posting(text)], str(path), tax)
        return results[0][1]

    return run


CODER = "Medical Coder\n\n{creds} required. ICD-10-CM and CPT."


def ids(items):
    return [i["id"] for i in items]


def test_required_credential_is_a_named_blocker_and_any_of_takes_either(fit_of):
    text = "Medical Coder\n\nCPC or CCS required. 2+ years coding experience. ICD-10-CM and CPT."
    good = fit_of("name: A\ncredentials: [CCS]\ncode_systems: [ICD-10-CM, CPT]\nexperience_years: 3\n", text)
    bad = fit_of("name: B\ncredentials: [CCA]\ncode_systems: [ICD-10-CM, CPT]\nexperience_years: 3\n", text)
    assert not good.blockers and "CCS or CPC" in ids(good.met)
    assert ids(bad.blockers) == ["CCS or CPC"]
    # the group is the only required item: none of the required items met caps at 25 (fit.yaml weak_required)
    assert bad.score == 25 and bad.components["cap_reason"] == "meets under half of the required items"
    assert bad.components["total_before_cap"] > 50 and bad.band == "not a fit"
    assert good.score > bad.score and good.band in ("strong", "possible")
    blocker = bad.blockers[0]
    assert "CPC or CCS required" in blocker["evidence"] and blocker["requirement"] == "required"


def test_apprentice_counts_only_where_the_posting_accepts_it(fit_of):
    apprentice = "name: A\ncredentials: [CPC-A]\ncode_systems: [ICD-10-CM, CPT]\n"
    strict = fit_of(apprentice, CODER.format(creds="CPC"))
    accepting = fit_of(apprentice, CODER.format(creds="CPC or CPC-A"))
    assert not strict.blockers  # a gap, not a blocker
    gap = next(m for m in strict.missing if m["kind"] == "credential")
    assert gap["credit"] == 0.5 and "apprentice" in gap["note"] and gap["note"].startswith("CPC-A")
    assert not accepting.blockers and any(m["kind"] == "credential" for m in accepting.met)
    assert accepting.score > strict.score


def test_coc_is_the_former_cpc_h(fit_of):
    f = fit_of("name: A\ncredentials: [COC]\ncode_systems: [ICD-10-CM, CPT]\n", CODER.format(creds="CPC-H"))
    assert not f.blockers and ids([m for m in f.met if m["kind"] == "credential"]) == ["COC"]


def test_rhia_meets_rhit_but_not_the_other_way(fit_of):
    rhia = fit_of("name: A\ncredentials: [RHIA]\n", "Health Information Technician\n\nRHIT required. Release of information.")
    rhit = fit_of("name: B\ncredentials: [RHIT]\n", "Health Information Manager\n\nRHIA required. Manage the HIM department.")
    met = next(m for m in rhia.met if m["kind"] == "credential")
    assert met["id"] == "RHIT" and met["note"] == "met by RHIA" and not rhia.blockers
    assert ids(rhit.blockers) == ["RHIA"]


def test_in_progress_is_partial_credit_and_still_blocks_a_requirement(fit_of):
    f = fit_of("name: A\ncredentials: [{id: CCS, status: in_progress}]\n", CODER.format(creds="CCS"))
    expired = fit_of("name: A\ncredentials: [{id: CCS, status: expired}]\n", CODER.format(creds="CCS"))
    gap = next(m for m in f.missing if m["kind"] == "credential")
    assert gap["credit"] == 0.5 and "in progress" in gap["note"] and ids(f.blockers) == ["CCS"]
    assert ids(expired.blockers) == ["CCS"]
    assert f.components["required"]["fit"] > expired.components["required"]["fit"]
    pref = fit_of("name: A\ncredentials: [{id: CCS, status: in_progress}]\n", "Medical Coder\n\nCCS preferred. ICD-10-CM.")
    assert not pref.blockers


def test_experience_and_education_are_graded(fit_of):
    text = "Medical Coder\n\nCPC required. 5 years of coding experience required. Associate degree required."
    base = "name: A\ncredentials: [CPC]\neducation: {edu}\nexperience_years: {y}\n"
    f5, f3, f0 = (fit_of(base.format(edu="associate", y=y), text) for y in (5, 3, 0))
    assert [f.components["experience"]["fit"] for f in (f5, f3, f0)] == [1.0, pytest.approx(1 / 3, abs=1e-3), 0.0]
    assert f5.score > f3.score > f0.score
    hs, cert = (fit_of(base.format(edu=e, y=5), text) for e in ("high school", "certificate"))
    assert cert.components["education"]["fit"] == 0.5 and hs.components["education"]["fit"] == 0.0


def test_years_are_read_in_the_postings_area(fit_of):
    text = "Medical Coder\n\nCPC required. 3 years of coding experience required."
    f = fit_of("name: A\ncredentials: [CPC]\nexperience_years: 8\nexperience: {coding: 1, billing: 7}\n", text)
    exp = next(m for m in f.missing if m["kind"] == "experience")
    assert "(coding)" in exp["id"] and "1 years of coding" in exp["evidence"]
    assert f.components["experience"]["fit"] == pytest.approx(1 / 3, abs=1e-3)


def test_pay_compares_the_annualised_top_of_range(fit_of):
    text = "Medical Biller\n\nPay: $20-$24/hr. Claims submission and denials."
    f = fit_of("name: A\ndesired_pay: {min: 28, period: hour}\n", text)
    assert f.components["pay"]["fit"] == pytest.approx(24 / 28, abs=1e-3)
    gbp = fit_of("name: A\ndesired_pay: {min: 20000, period: year, currency: GBP}\n", text)
    assert gbp.components["pay"]["fit"] == 1.0 and any("not compared" in m["id"] for m in gbp.missing)


def test_roles_outside_interest_are_capped_and_non_targets_more(fit_of):
    biller = "Medical Biller\n\nClaims submission, denials and A/R follow-up."
    f = fit_of("name: A\nroles_of_interest: [medical_coder]\n", biller)
    assert f.components["role"]["fit"] == 0 and f.score <= 70
    nurse = fit_of("name: A\n", "Registered Nurse\n\nRN license required. Patient care on a med/surg unit.")
    assert nurse.score <= 20 and any(b["kind"] == "role" for b in nurse.blockers)


def _db_with_samples(tmp_path):
    ctx = open_context(str(tmp_path / "m.duckdb"))
    ingest(ctx, [str(SAMPLES)])
    extract_pending(ctx)
    return ctx


def test_top_n_is_the_head_of_the_full_ranking(tmp_path, tax):
    ctx = _db_with_samples(tmp_path)
    profiles = [load_profile(p, tax) for p in sorted(PROFILES.glob("*.yaml"))]
    match(ctx)  # roles
    score_all(ctx.con, profiles, tax)
    full = {p.profile_id: sorted(stored_fits(ctx.con, p.profile_id).values(), key=lambda f: (-f.score, f.posting_id))
            for p in profiles}
    assert all(len(v) == 28 for v in full.values())
    score_all(ctx.con, profiles, tax, top=4, top_per_posting=1)
    for p in profiles:
        kept = stored_fits(ctx.con, p.profile_id)
        head = [f.posting_id for f in full[p.profile_id][:4]]
        ranked = sorted((f for f in kept.values() if f.rank_in_profile), key=lambda f: f.rank_in_profile)
        assert [f.posting_id for f in ranked] == head
        assert [f.score for f in ranked] == [f.score for f in full[p.profile_id][:4]]
    # per posting: the best profile for every posting is kept, and it is the true best
    per_posting = ctx.con.execute("SELECT posting_id, profile_id, score FROM matches WHERE rank_in_posting = 1").fetchall()
    n_target = ctx.con.execute("SELECT count(*) FROM posting_roles WHERE is_target").fetchone()[0]
    assert len(per_posting) == n_target == 21  # a recruiter's per-posting shortlist is for billing/coding/HIM jobs only
    for posting_id, profile_id, s in per_posting:
        assert s == max(next(f.score for f in fits if f.posting_id == posting_id) for fits in full.values())


def test_match_profiles_dir_is_deterministic_and_stored(tmp_path, tax):
    ctx = _db_with_samples(tmp_path)
    res = match(ctx, profiles_dir=PROFILES, top=5, top_per_posting=2)
    assert res.fit.n_pairs == 3 * 28 and {p.profile_id for p in res.profiles} == {"entry_cca", "experienced_cpc_coder", "cpb_biller"}
    dump1 = ctx.con.execute("SELECT * FROM matches ORDER BY ALL").fetchall()
    match(ctx, profiles_dir=PROFILES, top=5, top_per_posting=2)
    assert ctx.con.execute("SELECT * FROM matches ORDER BY ALL").fetchall() == dump1
    # every kept pair has its explanation, and the profile's points add up to its score before the cap
    for (comps, score_, ) in ctx.con.execute("SELECT components, score FROM matches").fetchall():
        import json

        c = json.loads(comps)
        total = sum(c[k]["points"] for k in ("required", "preferred", "experience", "education", "pay", "arrangement", "role"))
        assert abs(total - c["total_before_cap"]) < 0.3
        assert score_ == pytest.approx(min(c["total_before_cap"], c["cap"] if c["cap"] is not None else 1e9), abs=0.05)


def test_specific_skills_and_credentials_imply_the_broad_skill(fit_of):
    text = "Medical Coder\n\nCoding experience required. ICD-10-CM required."
    by_skill = fit_of("name: A\nskills: [outpatient coding]\ncode_systems: [ICD-10-CM]\n", text)
    by_cred = fit_of("name: A\ncredentials: [CCS]\ncode_systems: [ICD-10-CM]\n", text)
    studying = fit_of("name: A\ncredentials: [{id: CCS, status: in_progress}]\ncode_systems: [ICD-10-CM]\n", text)
    for f, via in ((by_skill, "outpatient_coding"), (by_cred, "CCS")):
        item = next(m for m in f.met if m["id"] == "medical_coding")
        assert item["note"] == f"met by {via}"
    assert any(m["id"] == "medical_coding" for m in studying.missing)


def test_few_required_items_met_is_at_most_a_stretch_and_silence_is_not_a_fit(fit_of):
    text = "Health Records Assistant\n\nEssential: customer service, data entry, filing, and Data Protection Act knowledge."
    f = fit_of("name: A\nskills: [customer service]\n", text)
    assert f.components["required"]["fit"] < 0.5 and f.score <= 50 and f.components["cap_reason"] == "meets under half of the required items"
    # nothing marked required: the preferred items stand in for them
    senior = "Senior Clinical Coder\n\nNational Clinical Coding Qualification (NCCQ) desirable. Clinical coding desirable."
    none_held = fit_of("name: A\nskills: [customer service]\n", senior)
    held = fit_of("name: A\ncredentials: [NCCQ]\nskills: [clinical coding]\n", senior)
    assert none_held.components["required"]["fit"] == 0.0 and none_held.score <= 50
    assert held.components["required"]["fit"] == 1.0 and held.score > 75


def test_location_counts_unless_the_job_is_remote(tmp_path, tax):
    import json

    feed = tmp_path / "feed.jsonl"
    base = {"title": "Medical Coder", "description": "Medical Coder\nCPC required. ICD-10-CM. {arr}"}
    rows = [{"id": "near", "location": "Mesa, AZ", **{k: v.format(arr="On-site.") for k, v in base.items()}},
            {"id": "far", "location": "Leeds, UK", **{k: v.format(arr="On-site.") for k, v in base.items()}},
            {"id": "remote", "location": "Leeds, UK", **{k: v.format(arr="This is a fully remote position.") for k, v in base.items()}}]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prof = tmp_path / "p.yaml"
    prof.write_text("name: A\ncredentials: [CPC]\nlocations: ['Phoenix, AZ']\nwork_arrangement: [onsite, remote]\n")
    from pipeline.ingest import read_postings

    _, results = score([p for p in read_postings([str(feed)])], str(prof), tax)
    fits = {rec["posting_id"]: fit for rec, fit in results}
    assert fits["near"].components["arrangement"]["fit"] == 1.0 and any(m["kind"] == "location" for m in fits["near"].met)
    far = next(m for m in fits["far"].missing if m["kind"] == "location")
    assert far["id"] == "Leeds, UK" and fits["far"].components["arrangement"]["fit"] == 0.0
    assert fits["remote"].components["arrangement"]["fit"] == 1.0 and not any(m["kind"] == "location" for m in fits["remote"].met + fits["remote"].missing)


def test_a_posting_that_asks_for_nothing_checkable_is_not_a_perfect_fit(fit_of):
    f = fit_of("name: A\ncredentials: [CPC]\n", "Clinical Coder\n\nJoin our friendly team. A logical approach and an eye for detail.")
    assert f.components["required"]["fit"] == 0.5 and f.components["preferred"]["fit"] == 0.5
    assert f.score < 75 and any(m["kind"] == "requirements" for m in f.missing)


def test_unreachable_work_and_unknown_education_do_not_count_as_met(fit_of):
    text = "Medical Coder\n\nCPC required. Associate degree required. This is an on-site position."
    wants_remote = fit_of("name: A\ncredentials: [CPC]\neducation: associate\nwork_arrangement: [remote]\n", text)
    assert wants_remote.score <= 50 and wants_remote.components["cap_reason"] == "work arrangement not accepted"
    no_edu = fit_of("name: A\ncredentials: [CPC]\n", text)
    assert no_edu.components["education"]["fit"] == 0.5
    assert any(m["kind"] == "education" and "gives no education" in m["evidence"] for m in no_edu.missing)


def test_cards_name_the_area_only_when_the_profile_gave_it(fit_of):
    text = "Medical Coder\n\nCPC required. 3 years of coding experience required."
    f = fit_of("name: A\ncredentials: [CPC]\nexperience_years: 10\n", text)
    exp = next(m for m in f.met if m["kind"] == "experience")
    assert exp["evidence"] == "profile has 10 years in all (no coding years given)" and exp["requirement"] == "required"
    pref = [m for m in f.met + f.missing if m["kind"] in ("pay", "work_arrangement", "location", "role")]
    assert all(m["requirement"] == "preference" for m in pref)


def test_a_folder_of_profiles_is_the_pool(tmp_path, tax):
    import shutil

    ctx = _db_with_samples(tmp_path)
    pool = tmp_path / "pool"
    shutil.copytree(PROFILES, pool)
    match(ctx, profiles_dir=pool, top=3)
    (pool / "cpb_biller.yaml").unlink()
    match(ctx, profiles_dir=pool, top=3)
    ids = {r[0] for r in ctx.con.execute("SELECT DISTINCT profile_id FROM matches").fetchall()}
    assert ids == {"entry_cca", "experienced_cpc_coder"}
    assert ctx.con.execute("SELECT count(*) FROM profiles WHERE profile_id = 'cpb_biller'").fetchone()[0] == 0
