"""Profiles: the documented format, errors with lines, suggestions, JSON Resume, résumé drafts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.profile import ProfileError, load_profile
from tests.conftest import PROFILES, run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sample_profiles_resolve_cleanly(tax):
    for path in sorted(PROFILES.glob("*.yaml")):
        prof = load_profile(path, tax)
        assert not prof.warnings, (path, prof.warnings)
        assert prof.credentials and prof.code_systems and prof.desired_annual
    cca = load_profile(PROFILES / "entry_cca.yaml", tax)
    assert cca.credentials == {"CCA": "active", "CPC-A": "in_progress"} and cca.experience["coding"] == 0.5


@pytest.mark.parametrize("text, message", [
    ("name: X\ncredentials:\n  - CPC\n  - {id: CCS, status: done}\n", r"p.yaml:line 4: credentials: status of 'CCS'"),
    ("name: X\nexperience_years: lots\n", r"line 2: experience_years must be a number"),
    ("name: X\nexperience: {coding: 2, surgery: 1}\n", r"unknown area 'surgery'"),
    ("name: X\ndesired_pay: {min: 20, period: fortnight}\n", r"line 2: desired_pay.period"),
    ("name: [unclosed\n", r"not valid YAML"),
])
def test_errors_name_field_and_line(tmp_path, tax, text, message):
    with pytest.raises(ProfileError, match=message):
        load_profile(write(tmp_path, text), tax)


def test_unknown_names_suggest_the_nearest_entry(tmp_path, tax):
    p = write(tmp_path, "name: X\ncredentials: [CPC]\nskills:\n  - denial managment\n  - Epicc\nroles_of_interest: [medical_coders]\n")
    prof = load_profile(p, tax)
    assert prof.credentials == {"CPC": "active"}
    text = "\n".join(prof.warnings)
    assert "line 4: skills: 'denial managment' is not a skill or a code system in the taxonomy; did you mean" in text
    assert "denial management" in text.lower()
    assert "line 5" in text and "'Epicc'" in text and "Epic" in text
    assert "did you mean 'medical_coder'" in text


def test_json_resume_is_a_profile(tax):
    prof = load_profile(FIXTURES / "json_resume_coder.json", tax, today=date(2026, 3, 1))
    assert prof.source_format == "json_resume" and prof.name == "Priya Natarajan"
    assert prof.credentials == {"CCS": "active", "RHIT": "in_progress"}
    assert {"ICD-10-PCS", "DRG"} <= prof.code_systems
    assert "inpatient_coding" in prof.skills and "denial_management" in prof.skills
    # 2018-01 .. 2026-03, the receptionist months overlap the biller job and are not counted twice
    assert prof.experience_years == pytest.approx(8.2, abs=0.05)
    assert prof.experience["coding"] == pytest.approx(5.0, abs=0.05) and prof.experience["billing"] == pytest.approx(3.2, abs=0.05)
    assert prof.experience["inpatient"] == pytest.approx(5.0, abs=0.05)
    assert prof.education == "associate" and prof.locations == ["Toledo, OH"]
    assert prof.desired_annual == 30 * 2080 and prof.work_arrangement == ["remote", "hybrid"]
    assert any("'Excell'" in w and "Excel" in w for w in prof.warnings)


def test_profile_check_command(tmp_path):
    r = CliRunner().invoke(cli, ["profile", "check", str(FIXTURES / "json_resume_coder.json")])
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.stdout)
    assert shown["credentials"]["CCS"] == "active"
    bad = write(tmp_path, "name: X\nskills: [Epicc]\n")
    r = CliRunner().invoke(cli, ["profile", "check", str(bad), "--strict"])
    assert r.exit_code == 1 and "Epicc" in r.output


RESUME = """Jordan Ellis
Toledo, OH · jordan@example.org

Experience
Medical Coder, Lakeside Physicians Group    Mar 2020 – Present
Assign ICD-10-CM and CPT codes for E/M visits and office procedures; modifier assignment.
Billing Specialist, Sunrise Clinic    Jan 2017 – Feb 2020
Claims submission, denial management and A/R follow-up in Epic.

Certifications
Certified Professional Coder (CPC), AAPC, 2020
CRC in progress (exam scheduled)

Education
Associate degree in Health Information Technology
"""


def _check_draft(out: str, err: str, tax, tmp_path, cpc_line: int | None = 11) -> None:
    draft = yaml.safe_load(out)
    assert draft["name"] == "Jordan Ellis"
    assert "CPC" in draft["credentials"] and {"id": "CRC", "status": "in_progress"} in draft["credentials"]
    assert {"ICD-10-CM", "CPT"} <= set(draft["code_systems"])
    assert "denial_management" in draft["skills"] and "epic" in draft["skills"]
    assert draft["experience_years"] >= 9 and draft["experience"]["coding"] >= 6 and draft["experience"]["billing"] == pytest.approx(3.2, abs=0.05)
    assert draft["education"] == "associate"
    # line numbers are lines of the document's text (a PDF's text layer has no blank lines)
    assert "found credentials: CPC" in err and (cpc_line is None or f"found credentials: CPC  (line {cpc_line}:" in err)
    # the draft is a valid profile as it stands
    p = write(tmp_path, out, "draft.yaml")
    assert load_profile(p, tax).credentials["CPC"] == "active"


def test_from_resume_txt_and_docx(tmp_path, tax):
    txt = write(tmp_path, RESUME, "resume.txt")
    r = run_cli("profile", "from-resume", str(txt))
    assert r.returncode == 0, r.stderr
    _check_draft(r.stdout.decode(), r.stderr.decode(), tax, tmp_path)
    import docx

    d = docx.Document()
    for line in RESUME.splitlines():
        d.add_paragraph(line)
    d.save(tmp_path / "resume.docx")
    r = run_cli("profile", "from-resume", str(tmp_path / "resume.docx"), "--out", str(tmp_path / "mine.yaml"))
    assert r.returncode == 0, r.stderr
    _check_draft((tmp_path / "mine.yaml").read_text(), r.stderr.decode(), tax, tmp_path, cpc_line=None)


def _tiny_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer, written by hand (no PDF writer dependency)."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = "BT /F1 10 Tf 40 800 Td 12 TL " + " ".join(f"({esc(ln)}) Tj T*" for ln in lines) + " ET"
    content_b = content.encode("latin-1")
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(content_b) + content_b + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % x for x in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_from_resume_pdf_and_bad_files(tmp_path, tax):
    lines = [ln.replace("–", "-").replace("·", "-") for ln in RESUME.splitlines()]
    (tmp_path / "resume.pdf").write_bytes(_tiny_pdf(lines))
    r = run_cli("profile", "from-resume", str(tmp_path / "resume.pdf"))
    assert r.returncode == 0, r.stderr
    _check_draft(r.stdout.decode(), r.stderr.decode(), tax, tmp_path, cpc_line=None)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / "broken.docx").write_bytes(b"PK not a zip")
    (tmp_path / "resume.rtf").write_text("{\\rtf1 CPC}")
    for name, msg in (("broken.pdf", b"not a readable PDF"), ("broken.docx", b"not a readable .docx"), ("resume.rtf", b"are read from")):
        r = run_cli("profile", "from-resume", str(tmp_path / name))
        assert r.returncode == 1 and msg in r.stderr and b"Traceback" not in r.stderr, (name, r.stderr)


def test_the_same_profile_twice_is_read_once_and_clashing_ids_are_one_clear_error(tmp_path):
    from tests.conftest import SAMPLES

    db = str(tmp_path / "d.duckdb")
    same = str(PROFILES / "entry_cca.yaml")
    r = run_cli("--db", db, "run", str(SAMPLES / "txt"), "--profiles", str(PROFILES), "--profile", same, "--profile", same,
                "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    other = tmp_path / "x"
    other.mkdir()
    (other / "entry_cca.json").write_text('{"name": "Someone else"}')
    (other / "broken.yaml").write_text("name: [unclosed\n")
    r = run_cli("--db", db, "run", str(SAMPLES / "txt"), "--profile", same, "--profiles", str(other), "--out", str(tmp_path / "o"))
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err
    assert "2 profiles cannot be used" in err and "broken.yaml" in err and "same profile id 'entry_cca'" in err
    runs = run_cli("--db", db, "runs", "--json")
    assert b'"interrupted"' not in runs.stdout  # the bad run never started


def test_unbelievable_numbers_and_invisible_characters(tmp_path, tax):
    p = write(tmp_path, "name: X\nexperience_years: 1e400\n")
    with pytest.raises(ProfileError, match="not believable"):
        load_profile(p, tax)
    p = write(tmp_path, "name: X\ndesired_pay: {min: 1e20, period: hour}\n")
    with pytest.raises(ProfileError, match="desired_pay.min per hour"):
        load_profile(p, tax)
    p = write(tmp_path, "name: \"Ann\\u202e\"\ncredentials: [ＣＰＣ, \"CCS\\u200b\", {id: CRC, status: In-Progress}, {id: CRC, status: active}]\n")
    prof = load_profile(p, tax)
    assert prof.name == "Ann" and prof.credentials == {"CPC": "active", "CCS": "active", "CRC": "active"}
    assert any("CRC is listed as in_progress and as active" in w for w in prof.warnings)


def test_json_resume_bad_data_is_reported_not_guessed(tmp_path, tax):
    import json

    data = {"basics": {"name": "T"}, "certificates": [{"name": "CPC (expired)"}, {"name": "RHIT - expected 2027"}],
            "skills": [{"name": "Coding", "keywords": "ICD-10-CM"}],
            "work": [{"position": "Coder", "startDate": "2020-01", "endDate": "2019-01"},
                     {"position": "Coder", "startDate": "2020-13-45"},
                     {"position": "Biller", "startDate": "2018-01", "endDate": "garbage"},
                     {"position": "Inpatient coder", "startDate": "2021-01", "endDate": "2022-12",
                      "summary": "Assign MS-DRGs and ICD-10-PCS codes; physician queries."}],
            "education": {"studyType": "Bachelor"}}
    p = write(tmp_path, json.dumps(data), "jr.json")
    prof = load_profile(p, tax, today=date(2026, 1, 1))
    assert prof.credentials == {"CPC": "expired", "RHIT": "in_progress"}
    assert {"ICD-10-CM", "ICD-10-PCS", "DRG"} <= prof.code_systems and "physician_queries" in prof.skills
    assert prof.experience_years == 2.0
    text = "\n".join(prof.warnings)
    for msg in ("endDate is before startDate", "'2020-13-45' is not a date", "'garbage' is not a date", "education should be a list"):
        assert msg in text
    assert all(w.startswith(str(p)) for w in prof.warnings)


def test_from_resume_refuses_empty_and_binary_text(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    for name, msg in (("empty.txt", b"empty"), ("bin.txt", b"not a text file")):
        r = run_cli("profile", "from-resume", str(tmp_path / name))
        assert r.returncode == 1 and msg in r.stderr and b"Traceback" not in r.stderr
