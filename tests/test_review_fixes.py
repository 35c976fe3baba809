"""Regressions for problems a reviewer found by using jobfit as a new user would."""

from __future__ import annotations

import io
import json
import os
import stat

import duckdb
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.ingest import read_postings
from tests.conftest import PROFILES, SAMPLES, run_cli


def test_each_stdin_posting_keeps_its_own_id():
    a = list(read_postings(["-"], stdin=io.BytesIO(b"Medical Coder\n\nCPC required.")))[0]
    b = list(read_postings(["-"], stdin=io.BytesIO(b"Medical Biller\n\nCPB preferred.")))[0]
    assert a.posting_id.startswith("stdin:") and a.posting_id != b.posting_id and a.source == b.source == "-"


def test_ms_office_is_not_a_masters_degree(extract_text):
    assert extract_text("Medical Biller\n\nProficient in MS Office. High school diploma required.")["education_min"] == "high_school"
    assert extract_text("Inpatient Coder\n\nMS-DRG assignment, ICD-10-PCS.")["education_min"] is None


def test_posting_without_title_has_no_title_line(tax):
    from pipeline.ingest import Posting
    from pipeline.runner import quick_extract

    text = "We are a 40-provider group whose CPC and CCS coders keep our revenue cycle healthy.\n\nJoin us."
    rec = quick_extract([Posting("x", "x", None, text, "json")], tax)[0]
    assert {c["requirement"] for c in rec["certifications"]} == {"mentioned"}


def test_inline_heading_longer_than_sixty_characters(extract_text):
    rec = extract_text("Inpatient Coder\n\nRequirements: RHIT with five years of inpatient coding experience in an acute care hospital setting.")
    assert {c["id"]: c["requirement"] for c in rec["certifications"]}["RHIT"] == "required"


def test_negated_alternative_leaves_the_group(extract_text):
    rec = extract_text("Coding Auditor\n\nMust have RHIT or RHIA; CPC not accepted.")
    c = {x["id"]: x for x in rec["certifications"]}
    assert c["CPC"]["requirement"] == "not_required" and c["CPC"]["any_of"] is None
    assert c["RHIT"]["requirement"] == "required" and c["RHIT"]["any_of"] == ["RHIA", "RHIT"]


def test_more_pay_forms(extract_text):
    def pay(text):
        s = extract_text("Medical Biller\n\n" + text)["salary"]
        return None if s is None else (s["min"], s["max"], s["period"])

    assert pay("Compensation: 60-70K per year") == (60000, 70000, "year")
    assert pay("$3,500 - $4,200 monthly") == (3500, 4200, "month")
    assert pay("We offer a $5,000 sign-on bonus! Pay is $25 an hour.") == (25, 25, "hour")
    assert pay("Salary: $40,000+ per year") == (40000, None, "year")


def _profile(tmp_path, body: str):
    p = tmp_path / "p.yaml"
    p.write_text(body)
    return p


def test_fit_matches_code_systems_exactly_and_respects_currency(tmp_path):
    post = tmp_path / "pcs.txt"
    post.write_text("Inpatient Coder\n\nRequirements:\n- ICD-10-PCS coding\n- CCS required\n\nSalary £30,000 per year")
    prof = _profile(tmp_path, "name: X\ncredentials: CCS\ncode_systems: [ICD-10-CM]\ndesired_pay: {min: 30000, period: year, currency: USD}\n")
    fit = json.loads(run_cli("score", str(post), "--profile", str(prof), "--json").stdout)
    missing = {(m["kind"], m["id"]) for m in fit["missing"]}
    assert ("code_system", "ICD-10-PCS") in missing
    assert any(k == "pay" and "not compared" in i for k, i in missing)
    assert not any(m["kind"] == "pay" for m in fit["met"])
    assert not fit["blockers"]  # "credentials: CCS" as a scalar still counts


def test_score_prints_profile_warnings_and_rejects_bad_status(tmp_path):
    post = SAMPLES / "txt" / "medical_biller_desert_sun.txt"
    prof = _profile(tmp_path, "name: X\ncredentials: [CPBB]\nskills: [Epicc]\n")
    r = run_cli("score", str(post), "--profile", str(prof))
    assert r.returncode == 0 and b"credentials: 'CPBB' is not a credential" in r.stderr and b"'Epicc'" in r.stderr
    assert b"did you mean 'Certified Professional Biller (CPB)'" in r.stderr and b"line 2" in r.stderr
    bad = _profile(tmp_path, "name: X\ncredentials: [{id: CPB, status: actve}]\n")
    r = run_cli("score", str(post), "--profile", str(bad))
    assert r.returncode == 1 and b"status" in r.stderr and b"Traceback" not in r.stderr


def test_missing_input_path_is_a_usage_error_before_anything_is_written(tmp_path):
    db = tmp_path / "never.duckdb"
    r = run_cli("--db", str(db), "run", str(SAMPLES / "txt"), str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and b"nope.txt: no such file or directory" in r.stderr
    assert not db.exists()


def test_report_for_unknown_profile_and_file_modes(tmp_path):
    db = str(tmp_path / "r.duckdb")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "run", str(SAMPLES / "txt"), "--out", str(tmp_path / "o"),
                               "--profile", str(PROFILES / "cpb_biller.yaml")]).exit_code == 0
    r = runner.invoke(cli, ["--db", db, "report", "--profile-id", "nosuch", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "no stored profile 'nosuch'" in r.output and "cpb_biller" in r.output
    mode = stat.S_IMODE(os.stat(tmp_path / "o" / "jobfit-cpb_biller.html").st_mode)
    assert mode & 0o044 == 0o044  # readable by group and others (umask permitting), not mkstemp's 0600


def test_pipeline_cache_folder_is_created(tmp_path):
    cache = tmp_path / "deep" / "cache"
    r = run_cli("extract", str(SAMPLES / "txt" / "medical_biller_desert_sun.txt"), env={"JOBFIT_CACHE": str(cache)})
    assert r.returncode == 0, r.stderr
    assert any(p.name.startswith("nlp-") and (p / "meta.json").exists() for p in cache.iterdir())


def test_eval_reports_broken_gold_without_traceback(tmp_path):
    gold = tmp_path / "g.jsonl"
    gold.write_text('{"file": "txt/medical_biller_desert_sun.txt", "is_target": true, "role": "medical_biller"}\n{oops\n')
    r = run_cli("eval", str(SAMPLES), "--gold", str(gold))
    assert r.returncode == 1 and b"g.jsonl:2: not valid JSON" in r.stderr and b"Traceback" not in r.stderr
    gold.write_text('{"file": "txt/none.txt", "is_target": true, "role": "medical_biller"}\n')
    r = run_cli("eval", str(SAMPLES), "--gold", str(gold))
    assert r.returncode == 1 and b"txt/none.txt not found" in r.stderr


def test_jsonld_salary_written_as_text(tmp_path):
    jp = {"@type": "JobPosting", "title": "Medical Biller", "description": "Work denials and A/R.",
          "employmentType": ["PART_TIME", "FULL_TIME"],
          "baseSalary": {"@type": "MonetaryAmount", "currency": "USD", "value": {"minValue": "$45,000", "maxValue": "$52,000.00", "unitText": "YEAR"}}}
    f = tmp_path / "jp.json"
    f.write_text(json.dumps(jp))
    rec = json.loads(run_cli("extract", str(f), "--format", "json").stdout)
    assert (rec["salary"]["min"], rec["salary"]["max"]) == (45000, 52000) and rec["employment_type"] == "full_time"


def test_unicode_hyphens_and_fullwidth(extract_text):
    rec = extract_text("Medical Coder\n\nICD\u201110\u2011CM and \uff23\uff30\uff34 coding; \uff23\uff30\uff23 required.")
    assert {s["id"] for s in rec["code_systems"]} >= {"ICD-10-CM", "CPT"}
    assert {c["id"]: c["requirement"] for c in rec["certifications"]}.get("CPC") == "required"
