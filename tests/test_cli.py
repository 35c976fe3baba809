"""The CLI end to end: CliRunner for behaviour, a real subprocess for what a user runs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from pipeline.cli import cli, EXIT_REJECTS, EXIT_LOCKED
from tests.conftest import PROFILES, SAMPLES, run_cli


def test_run_on_samples_writes_db_and_reports(tmp_path):
    db, out = tmp_path / "jobs.duckdb", tmp_path / "reports"
    r = CliRunner().invoke(cli, ["--db", str(db), "run", str(SAMPLES), "--profile", str(PROFILES / "entry_cca.yaml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "28 new" in r.output
    for name in ("jobfit-entry_cca.html", "jobfit-entry_cca.md", "jobfit-entry_cca.csv", "jobfit-entry_cca.jsonl"):
        assert (out / name).stat().st_size > 0, name
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM postings").fetchone()[0] == 28
    assert con.execute("SELECT count(*) FROM extractions").fetchone()[0] == 28
    assert con.execute("SELECT count(*) FROM posting_roles WHERE role_id = 'none'").fetchone()[0] >= 5
    assert con.execute("SELECT count(*) FROM matches WHERE profile_id = 'entry_cca'").fetchone()[0] == 28
    assert con.execute("SELECT status FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()[0] == "ok"
    con.close()
    # a second run changes nothing and extracts nothing
    r2 = CliRunner().invoke(cli, ["--db", str(db), "run", str(SAMPLES), "--out", str(out)])
    assert r2.exit_code == 0 and "0 new, 0 updated, 28 unchanged" in r2.output and "extracted 0" in r2.output


def test_step_by_step_commands(tmp_path):
    db = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "ingest", str(SAMPLES / "txt")]).exit_code == 0
    r = runner.invoke(cli, ["--db", db, "extract"])
    assert r.exit_code == 0 and "extracted 6" in r.output
    r = runner.invoke(cli, ["--db", db, "match", "--profile", str(PROFILES / "cpb_biller.yaml")])
    assert r.exit_code == 0 and "6 posting(s) have a role (0 classified now)" in r.output
    r = runner.invoke(cli, ["--db", db, "report", "--out", str(tmp_path / "r"), "--format", "md,csv", "--profile-id", "cpb_biller"])
    assert r.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["jobfit-cpb_biller.csv", "jobfit-cpb_biller.md", "jobfit.csv", "jobfit.md"]
    r = runner.invoke(cli, ["--db", db, "report", "--format", "pdf"])
    assert r.exit_code == 2 and "unknown report format" in r.output


def test_rejects_reported_and_batch_continues(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.txt").write_text("Medical Coder\n\nCPC required. 2 years experience.")
    (tmp_path / "in" / "bad.json").write_text("{oops")
    db = str(tmp_path / "r.duckdb")
    r = CliRunner().invoke(cli, ["--db", db, "run", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert r.exit_code == EXIT_REJECTS
    assert "rejected: " in r.output and "malformed JSON" in r.output
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM extractions").fetchone()[0] == 1
    assert con.execute("SELECT reason FROM rejects").fetchone()[0].startswith("malformed JSON")
    con.close()
    # fixed file is picked up by the next run
    (tmp_path / "in" / "bad.json").write_text(json.dumps({"title": "Medical Biller", "description": "CPB preferred. Denials."}))
    r = CliRunner().invoke(cli, ["--db", db, "run", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "1 new" in r.output


def test_user_mistakes_get_one_line_not_a_traceback(tmp_path):
    r = run_cli("--db", str(tmp_path / "x.duckdb"), "ingest", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert b"no such file or directory" in r.stderr and b"Traceback" not in r.stderr
    bad = tmp_path / "p.yaml"
    bad.write_text("name: X\nwork_arrangement: [moon]\n")
    r = run_cli("score", str(SAMPLES / "txt" / "medical_biller_desert_sun.txt"), "--profile", str(bad))
    assert r.returncode == 1 and b"work_arrangement" in r.stderr and b"Traceback" not in r.stderr


def test_locked_database_exit_code(tmp_path):
    db = tmp_path / "l.duckdb"
    holder = duckdb.connect(str(db))  # another process-like holder: DuckDB locks the file per process
    holder.close()
    import subprocess, sys, textwrap, time

    code = textwrap.dedent(f"""
        import duckdb, time, sys
        con = duckdb.connect({str(db)!r})
        print('locked', flush=True)
        time.sleep(30)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"locked"
        r = run_cli("--db", str(db), "ingest", str(SAMPLES / "txt"))
        assert r.returncode == EXIT_LOCKED, r.stderr
        assert b"in use by another jobfit process" in r.stderr and b"Traceback" not in r.stderr
    finally:
        p.kill()
        p.wait()


def test_score_prints_a_card_and_json():
    posting = SAMPLES / "txt" / "outpatient_profee_coder_lakeshore.txt"
    r = run_cli("score", str(posting), "--profile", str(PROFILES / "experienced_cpc_coder.yaml"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "for Marcus Okafor" in out and "/100" in out and "required" in out
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal
    r = run_cli("score", str(posting), "--profile", str(PROFILES / "entry_cca.yaml"), "--json")
    fit = json.loads(r.stdout)
    assert any(b["id"].startswith("CPC") for b in fit["blockers"])
    assert fit["band"] in ("stretch", "not a fit", "possible")


def test_extract_quick_look_does_not_touch_db(tmp_path):
    db = tmp_path / "never.duckdb"
    r = run_cli("--db", str(db), "extract", str(SAMPLES / "txt" / "medical_biller_desert_sun.txt"), "--format", "table")
    assert r.returncode == 0 and b"medical_biller" in r.stdout
    assert not db.exists()


def test_help_for_every_command_has_an_example():
    for cmd in (["taxonomy", "validate"], ["taxonomy", "load"], ["taxonomy", "show"], ["ingest"], ["extract"], ["match"], ["report"], ["run"], ["score"], ["eval"]):
        r = CliRunner().invoke(cli, cmd + ["--help"])
        assert r.exit_code == 0 and "Example" in r.output, cmd
