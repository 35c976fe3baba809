"""Role classification on short postings written for the rules (fit: test_fit.py)."""

from __future__ import annotations



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
