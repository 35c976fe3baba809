"""Role classification and fit on short postings written for the rules."""

from __future__ import annotations

from pipeline.match import credential_links, fit_posting
from pipeline.profile import load_profile
from pipeline import store
from tests.conftest import PROFILES


def role(extract_text, text):
    return extract_text(text)["role"]["id"]


def test_titles_decide_roles(extract_text):
    assert role(extract_text, "Inpatient Coder\n\nCCS required. ICD-10-PCS and MS-DRG assignment.") in ("hospital_coder", "medical_coder")
    assert role(extract_text, "Medical Biller\n\nSubmit claims, work denials, A/R follow-up.") == "medical_biller"
    assert role(extract_text, "Clinical Documentation Integrity Specialist\n\nCCDS preferred. Physician queries.") == "cdi_specialist"
    assert role(extract_text, "Coding Manager\n\nSupervise a team of 12 coders. CPC required.") == "coding_manager"
    assert role(extract_text, "Release of Information Specialist\n\nProcess ROI requests under HIPAA.") == "health_information_technician"


def test_non_targets_are_none(extract_text):
    assert role(extract_text, "Registered Nurse - Med/Surg\n\nRN license required. Document care in Epic.") == "none"
    assert role(extract_text, "Medical Billing and Coding Instructor\n\nTeach CPT and ICD-10 to students; prepare them for the CPC exam.") == "none"
    assert role(extract_text, "Legal Billing Specialist\n\nLaw firm billing, attorney timekeeping, e-billing.") == "none"
    assert role(extract_text, "Software Engineer\n\nBuild services that store CPT and ICD-10 codes. Python, Kubernetes.") == "none"


def test_fit_gates_and_any_of(extract_text, tax):
    con = store.connect(":memory:")
    store.load_taxonomy(con, tax)
    links = credential_links(con)
    cpc = load_profile(PROFILES / "experienced_cpc_coder.yaml", tax)
    cca = load_profile(PROFILES / "entry_cca.yaml", tax)
    rec = extract_text("Medical Coder\n\nCPC or CCS required. 2+ years coding experience. ICD-10-CM and CPT.")
    good, bad = fit_posting(cpc, rec, links), fit_posting(cca, rec, links)
    assert not good.blockers and good.score > bad.score
    assert [b["id"] for b in bad.blockers] == ["CCS or CPC"]
    assert bad.score <= 50
    assert good.band in ("strong", "possible")
