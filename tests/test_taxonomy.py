"""The taxonomy files: complete, consistent, loadable, and validate points at the line to fix."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.taxonomy import ROLE_IDS, default_taxonomy_dir, load_taxonomy
from pipeline import store


def test_real_taxonomy_is_valid_and_complete(tax):
    assert tax.problems == []
    assert set(tax.roles) == set(ROLE_IDS)
    creds = tax.terms["credential"]
    for cid in ["CPC", "CPC-A", "COC", "CIC", "CRC", "CPB", "CPMA", "CPPM", "CPCO", "CCA", "CCS", "CCS-P", "RHIT", "RHIA",
                "CDIP", "CHDA", "CHPS", "CBCS", "CMRS", "CRCR", "CRCS", "ACC", "NCCQ", "ANY_CODING_CERT"]:
        assert cid in creds, cid
    assert creds["COC"].extra.get("formerly") and "CPC-H" in creds["COC"].acronyms
    assert creds["CPC"].extra["issuer"] == "AAPC" and creds["CCS"].extra["issuer"] == "AHIMA"
    for sid in ["ICD-10-CM", "ICD-10-PCS", "ICD-10", "ICD-9-CM", "CPT", "HCPCS", "E/M", "DRG", "APC", "HCC", "MODIFIERS", "OPCS-4", "ICD-10-CA", "SNOMED-CT"]:
        assert sid in tax.terms["code_system"], sid
    for role in tax.roles.values():
        assert role.title_aliases and role.items and role.source
    for kind, entries in tax.terms.items():
        for t in entries.values():
            assert t.source, f"{kind} {t.id} has no source"


def test_onet_attribution_present():
    text = (default_taxonomy_dir() / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "O*NET" in text and "CC BY 4.0" in text


def test_validate_reports_problems_with_file_and_line(tmp_path):
    bad = tmp_path / "tax"
    shutil.copytree(default_taxonomy_dir(), bad)
    creds = (bad / "credentials.yaml").read_text(encoding="utf-8")
    creds += "\n- id: FAKE\n  name: Certified Professional Coder\n  issuer: X\n  aliases: [\"Certified Professional Coder\"]\n  acronyms: [FAKE]\n"
    (bad / "credentials.yaml").write_text(creds, encoding="utf-8")
    roles = (bad / "roles.yaml").read_text(encoding="utf-8").replace("id: CPC,", "id: NOPE,", 1)
    (bad / "roles.yaml").write_text(roles, encoding="utf-8")
    tax = load_taxonomy(bad)
    messages = [str(p) for p in tax.problems]
    assert any(m.startswith("credentials.yaml:") and "FAKE: missing source" in m for m in messages), messages
    assert any("also belongs to" in m and "FAKE" in m for m in messages), messages
    assert any(m.startswith("roles.yaml:") and "unknown credential id 'NOPE'" in m for m in messages), messages
    line = int(next(m for m in messages if "FAKE: missing source" in m).split(":")[1])
    assert (bad / "credentials.yaml").read_text(encoding="utf-8").splitlines()[line - 1].startswith("- id: FAKE")
    result = CliRunner().invoke(cli, ["--taxonomy", str(bad), "taxonomy", "validate"])
    assert result.exit_code == 1
    assert "FAKE: missing source" in result.output


def test_load_into_duckdb_and_show(tmp_path, tax):
    db = tmp_path / "t.duckdb"
    r = CliRunner().invoke(cli, ["--db", str(db), "taxonomy", "load"])
    assert r.exit_code == 0, r.output
    con = store.connect(db)
    assert con.execute("SELECT count(*) FROM tax_roles").fetchone()[0] == 10
    assert con.execute("SELECT count(*) FROM tax_terms WHERE kind='credential'").fetchone()[0] == len(tax.terms["credential"])
    assert con.execute("SELECT issuer FROM tax_terms WHERE kind='credential' AND term_id='CPB'").fetchone()[0] == "AAPC"
    con.close()
    r = CliRunner().invoke(cli, ["--db", str(db), "taxonomy", "show", "hospital_coder"])
    assert r.exit_code == 0 and "CCS" in r.output
    r = CliRunner().invoke(cli, ["--db", str(db), "taxonomy", "show", "astronaut"])
    assert r.exit_code == 2 and "unknown role" in r.output
