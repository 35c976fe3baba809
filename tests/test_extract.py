"""Extraction behaviour on short postings written for each rule (not taken from the samples)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def creds(rec):
    return {c["id"]: c["requirement"] for c in rec["certifications"]}


def test_either_or_credentials_form_one_requirement(extract_text):
    rec = extract_text("Medical Coder\n\nCPC or CCS required; CRC a plus.")
    c = {x["id"]: x for x in rec["certifications"]}
    assert c["CPC"]["requirement"] == "required" and c["CCS"]["requirement"] == "required"
    assert c["CPC"]["any_of"] == ["CCS", "CPC"] == c["CCS"]["any_of"]
    assert c["CRC"]["requirement"] == "preferred" and c["CRC"]["any_of"] is None


def test_requirement_levels_from_cues(extract_text):
    rec = extract_text("Medical Biller\n\nCertification not required. CPB preferred. Must hold an active CBCS or CMRS.")
    assert creds(rec)["CPB"] == "preferred"
    assert creds(rec)["CBCS"] == "required" and creds(rec)["CMRS"] == "required"


def test_requirement_levels_from_sections(extract_text):
    rec = extract_text("Inpatient Coder\n\nRequirements:\n- CCS credential\n- ICD-10-PCS coding\n\nPreferred:\n- CDIP\n\nBenefits\n- CPC exam fee paid")
    c = creds(rec)
    assert c["CCS"] == "required" and c["CDIP"] == "preferred" and c["CPC"] == "mentioned"
    systems = {s["id"]: s["requirement"] for s in rec["code_systems"]}
    assert systems["ICD-10-PCS"] == "required"


def test_ambiguous_acronyms_need_credential_context(extract_text):
    rec = extract_text("Care Coordinator\n\nHelp families apply for CCS (California Children's Services) benefits. "
                       "Our CPC team runs ads on a cost-per-click basis.")
    assert "CCS" not in creds(rec) and "CPC" not in creds(rec)
    rec2 = extract_text("Coder\n\nAAPC certified coder (CPC) with ICD-10-CM experience.")
    assert "CPC" in creds(rec2)
    assert [s["id"] for s in rec2["code_systems"]] == ["ICD-10-CM"]
    assert not any(c["text"] == "CM" for c in rec2["certifications"])


def test_former_credential_names_map_to_current_id(extract_text):
    rec = extract_text("Outpatient Facility Coder\n\nCPC-H (now COC) required.")
    assert creds(rec).get("COC") == "required"


def test_generic_certification(extract_text):
    rec = extract_text("Medical Coder\n\nAAPC or AHIMA certification required.")
    assert creds(rec).get("ANY_CODING_CERT") == "required"


def test_codes_with_validity(extract_text):
    rec = extract_text("Coder\n\nYou will code E11.9, I10 and Z99.999X, CPT codes 99202–99215 and 99213, "
                       "HCPCS J1100, ICD-10-PCS 0DTJ4ZZ, DRG 470 and modifier 25/59.")
    got = {(c["system"], c["code"]): c["valid"] for c in rec["codes"]}
    assert got[("ICD-10-CM", "E11.9")] is True
    assert got[("ICD-10-CM", "I10")] is True
    assert got[("ICD-10-CM", "Z99.999X")] is False
    assert got[("CPT", "99202-99215")] is True
    assert got[("CPT", "99213")] is True
    assert got[("ICD-10-PCS", "0DTJ4ZZ")] is True
    assert got[("DRG", "470")] is True
    assert ("MODIFIERS", "25") in got and ("MODIFIERS", "59") in got
    assert ("HCPCS", "J1100") in got
    for c in rec["codes"]:
        assert c["start"] < c["end"]


def test_zip_codes_are_not_cpt(extract_text):
    rec = extract_text("Medical Biller\n\nOffice at 1200 Main St, Phoenix, AZ 85004. Submit claims daily.")
    assert not any(c["system"] == "CPT" for c in rec["codes"])


def test_years_of_experience_forms(extract_text):
    cases = {
        "2+ years of coding experience": 2,
        "minimum of three (3) years of billing experience": 3,
        "3-5 years experience in medical billing": 3,
        "at least 5 yrs exp": 5,
        "6 months of coding experience": 0.5,
        "one year of experience required; 3 years preferred": 1,
        "No experience necessary, we train.": None,
        "Founded over 25 years ago, we serve 40 clinics.": None,
    }
    for text, want in cases.items():
        assert extract_text("Medical Biller\n\n" + text)["experience_years_min"] == want, text


def test_pay_forms(extract_text):
    cases = {
        "Pay: $20–$24/hr": (20, 24, "hour", "USD", 41600, 49920),
        "$22.50 per hour": (22.5, 22.5, "hour", "USD", 46800, 46800),
        "Salary $55,000 - $68,000 annually": (55000, 68000, "year", "USD", 55000, 68000),
        "$4,000/month": (4000, 4000, "month", "USD", 48000, 48000),
        "up to $30/hour": (None, 30, "hour", "USD", None, 62400),
        "Salary: £24,907 - £30,615 per annum": (24907, 30615, "year", "GBP", 24907, 30615),
        "Wage: $26/hr CAD": (26, 26, "hour", "CAD", 54080, 54080),
    }
    for text, want in cases.items():
        s = extract_text("Medical Coder\n\n" + text)["salary"]
        assert s is not None, text
        assert (s["min"], s["max"], s["period"], s["currency"], s["annual_min"], s["annual_max"]) == want, text


def test_no_pay_from_years_or_zip(extract_text):
    assert extract_text("Medical Coder\n\n2-3 years experience. Located in 85004.")["salary"] is None


def test_work_arrangement_and_employment(extract_text):
    assert extract_text("Medical Coder\n\nThis is a 100% remote, full-time role.")["work_arrangement"] == "remote"
    assert extract_text("Medical Coder\n\nHybrid: 3 days in office.")["work_arrangement"] == "hybrid"
    assert extract_text("Medical Coder\n\nThis is an on-site position.")["work_arrangement"] == "onsite"
    rec = extract_text("Medical Coder\n\nFull-time. Benefits include flexible working during COVID from home.")
    assert rec["work_arrangement"] is None and rec["employment_type"] == "full_time"


def test_offsets_point_at_the_text(extract_text, tax):
    from pipeline.ingest import Posting
    from pipeline.runner import quick_extract

    text = "Medical Coder\n\nCPC required. ICD-10-CM and CPT. Epic experience preferred."
    rec = quick_extract([Posting("x", "x", "Medical Coder", text, "text")], tax)[0]
    for group in ("certifications", "code_systems", "skills", "codes"):
        for item in rec[group]:
            assert text[item["start"]:item["end"]] == item["text"]


def test_pipeline_saves_and_loads(tmp_path, tax, nlp):
    import spacy

    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert loaded.pipe_names == nlp.pipe_names
    text = "Coder\n\nCPC or CCS required. 2+ years experience. $20/hr."
    assert loaded(text).user_data["jobfit"] == nlp(text).user_data["jobfit"]


def test_the_cached_pipeline_is_the_built_one(tmp_path, tax):
    """load_nlp saves the pipeline without its tokenizer (rebuilt from the config, blank English)
    and with the rulers ahead of the splitter: it must still tokenize and extract exactly as a
    freshly built pipeline and as spaCy's blank English tokenizer do."""
    import spacy

    from pipeline.nlp import build_nlp, load_nlp

    built = build_nlp(tax)
    load_nlp(tax, tmp_path)  # builds and saves
    cached = load_nlp(tax, tmp_path)  # loads from the cache
    assert cached is not built and cached.pipe_names == built.pipe_names
    assert cached.pipe_names.index("jobfit_acronyms") < cached.pipe_names.index("jobfit_sentences")
    blank = spacy.blank("en")
    for text in ["Coder\n\nCPC or CCS required. 2+ years experience. $20/hr.", "don't e.g. U.S. 9:30am (ICD-10-CM) CPC-A;RHIT",
                 (ROOT / "sample_postings" / "txt" / "billing_coding_specialist_pinecrest_family.txt").read_text(encoding="utf-8")]:
        assert [t.text for t in cached.make_doc(text)] == [t.text for t in blank(text)]
        assert cached(text).user_data["jobfit"] == built(text).user_data["jobfit"]


def test_a_posting_that_breaks_the_pipeline_is_reported_not_fatal(tax, nlp):
    import copy

    from spacy.language import Language

    from pipeline.extract import ExtractError, Extraction, extract
    from pipeline.ingest import Posting

    @Language.component("jobfit_test_boom")
    def boom(doc):
        if "BOOM" in doc.text:
            raise RuntimeError("simulated component failure")
        return doc

    broken = copy.deepcopy(nlp)
    broken.add_pipe("jobfit_test_boom", last=True)
    posts = [Posting(str(i), f"s{i}", "Medical Coder", f"Medical Coder\n\nCPC required. {'BOOM' if i == 1 else ''}", "text") for i in range(3)]
    out = list(extract(posts, broken))
    kinds = [type(x).__name__ for _, x in out]
    assert kinds == ["Extraction", "ExtractError", "Extraction"]
    err = out[1][1]
    assert isinstance(err, ExtractError) and "simulated component failure" in err.reason
    assert all(isinstance(x, Extraction) for i, (_, x) in enumerate(out) if i != 1)


def test_hcpcs_validity_from_the_cms_file(tmp_path):
    from tests.conftest import HCPCS, needs_hcpcs, run_cli  # noqa: F401

    import pytest

    if not HCPCS.exists():
        pytest.skip(f"CMS HCPCS file not found at {HCPCS} (only CI and developers have ../shared)")
    post = tmp_path / "p.txt"
    post.write_text("Medical Biller\n\nBill HCPCS codes J1100 and J0001 for injections.")
    import json

    without = json.loads(run_cli("extract", str(post), "--format", "json", env={"JOBFIT_HCPCS": ""}).stdout)
    assert {c["code"]: c["valid"] for c in without["codes"] if c["system"] == "HCPCS"} == {"J1100": None, "J0001": None}
    with_file = json.loads(run_cli("--hcpcs", str(HCPCS), "extract", str(post), "--format", "json").stdout)
    assert {c["code"]: c["valid"] for c in with_file["codes"] if c["system"] == "HCPCS"} == {"J1100": True, "J0001": False}
