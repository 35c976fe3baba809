"""Nightly runs: killed at any point and re-run, the result equals an uninterrupted run; broken
inputs are set aside with reasons; a second concurrent run exits with the lock code; structured
feeds (schema.org JobPosting, JobSpy) are read. Real processes, real files, real DuckDB."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import EXIT_LOCKED, EXIT_REJECTS
from tests.conftest import PROFILES, ROOT, SAMPLES, run_cli

DATA_TABLES = {
    "postings": "posting_id, source, title, text, content_hash, format, encoding, meta",
    "extractions": "posting_id, content_hash, taxonomy_version, extractor_version, experience_years_min, education_min, salary_min, salary_max, salary_period, salary_currency, annual_min, annual_max, work_arrangement, employment_type",
    "extraction_items": "*",
    "extraction_codes": "*",
    "extraction_signals": "*",
    "posting_roles": "*",
    "matches": "*",
    "profiles": "*",
}


def make_corpus(folder: Path, n: int) -> Path:
    """n distinct postings made from the samples' text (a number in each title and body)."""
    texts = []
    for p in sorted((SAMPLES / "txt").glob("*.txt")) + sorted((SAMPLES / "md").glob("*.md")):
        texts.append(p.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "feed.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n):
            t = texts[i % len(texts)]
            title, _, body = t.partition("\n")
            fh.write(json.dumps({"id": f"p{i:05d}", "title": f"{title.strip('# ')} #{i}", "description": f"{body}\nRequisition {i}."}) + "\n")
    return folder


def dump(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT {cols} FROM {t}").fetchall())) for t, cols in DATA_TABLES.items()}
    finally:
        con.close()


def report_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def start(db: Path, corpus: Path, out: Path, env: dict) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("jobfit")
    return subprocess.Popen([str(exe), "--db", str(db), "run", str(corpus), "--out", str(out), "--log-json",
                             "--profile", str(PROFILES / "cpb_biller.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), 400)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, corpus):
    d = tmp_path_factory.mktemp("clean")
    env = {**os.environ, "JOBFIT_BATCH": "40"}
    p = start(d / "clean.duckdb", corpus, d / "reports", env)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-2000:]
    return dump(d / "clean.duckdb"), report_files(d / "reports")


@pytest.mark.parametrize("kill_after", [("ingest_batch", 3), ("extract_batch", 2), ("extract_batch", 6), ("report_start", 1)])
def test_sigkill_then_rerun_equals_clean_run(tmp_path, corpus, clean_run, kill_after):
    event, count = kill_after
    db, out = tmp_path / "k.duckdb", tmp_path / "reports"
    env = {**os.environ, "JOBFIT_BATCH": "40"}
    p = start(db, corpus, out, env)
    seen = 0
    for line in p.stderr:
        if json.loads(line).get("event") == event:
            seen += 1
            if seen >= count:
                p.send_signal(signal.SIGKILL)
                break
    p.wait(timeout=120)
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    # the next run finishes the work
    p2 = start(db, corpus, out, env)
    _, err = p2.communicate(timeout=600)
    assert p2.returncode == 0, err.decode()[-2000:]
    clean_db, clean_reports = clean_run
    assert dump(db) == clean_db
    assert report_files(out) == clean_reports
    con = duckdb.connect(str(db), read_only=True)
    statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY run_id").fetchall()]
    con.close()
    assert statuses == ["interrupted", "ok"]


def test_rerun_is_idempotent(tmp_path, corpus, clean_run):
    db, out = tmp_path / "i.duckdb", tmp_path / "reports"
    env = {**os.environ, "JOBFIT_BATCH": "40"}
    for _ in range(2):
        p = start(db, corpus, out, env)
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    assert dump(db) == clean_run[0]
    assert report_files(out) == clean_run[1]


def test_two_runs_at_once_one_gets_the_lock(tmp_path, corpus):
    db = tmp_path / "lock.duckdb"
    env = {**os.environ, "JOBFIT_BATCH": "40"}
    a = start(db, corpus, tmp_path / "ra", env)
    b = start(db, corpus, tmp_path / "rb", env)
    ea, eb = a.communicate(timeout=600)[1], b.communicate(timeout=600)[1]
    codes = sorted([a.returncode, b.returncode])
    assert codes == [0, EXIT_LOCKED], (codes, ea.decode()[-500:], eb.decode()[-500:])
    loser = eb if b.returncode == EXIT_LOCKED else ea
    assert b"in use by another jobfit process" in loser and b"Traceback" not in loser


def test_broken_inputs_set_aside_and_picked_up_once_fixed(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = "Medical Biller\n\nSubmit claims and work denials. CPB preferred. 2 years of billing experience."
    (d / "good1.txt").write_text(good)
    (d / "good2.html").write_text("<html><body><h1>Medical Coder</h1><script>document.write('x')</script><p>CPC required.</p></body></html>")
    (d / "latin1.txt").write_bytes("Codificación médica\n\nCoder wanted, CPC required, 2 años.".encode("cp1252"))
    (d / "mixed.txt").write_bytes("Medical Coder caf\u00e9\n\n".encode("utf-8") + "CPC required – r\u00e9sum\u00e9".encode("cp1252"))
    (d / "empty.txt").write_text("")
    (d / "blob.txt").write_bytes(bytes(range(256)) * 20)
    (d / "bad.json").write_text('{"title": "Coder", ')
    (d / "feed.jsonl").write_text(json.dumps({"id": "j1", "title": "Payment Poster", "description": "Post ERA/EOB payments."}) + "\n{broken\n")
    (d / "nocol.csv").write_text("title,company\nCoder,Acme\n")
    (d / "huge.txt").write_text("Medical Coder\n\n" + "CPC required. " * 20000)
    db = tmp_path / "b.duckdb"
    r = run_cli("--db", str(db), "run", str(d), "--out", str(tmp_path / "out"), "--max-bytes", "100000")
    assert r.returncode == EXIT_REJECTS, r.stderr.decode()
    con = duckdb.connect(str(db), read_only=True)
    rejects = {Path(s.split("#")[0]).name + (f"#{n}" if n else ""): why for s, n, why in con.execute("SELECT source, record, reason FROM rejects").fetchall()}
    stored = {Path(s.split("#")[0]).name for (s,) in con.execute("SELECT source FROM postings").fetchall()}
    encodings = dict(con.execute("SELECT source, encoding FROM postings").fetchall())
    con.close()
    assert rejects["empty.txt"] == "empty file"
    assert "binary" in rejects["blob.txt"] or "undecodable" in rejects["blob.txt"]
    assert rejects["bad.json"].startswith("malformed JSON")
    assert rejects["feed.jsonl#2"].startswith("malformed JSON line")
    assert "no text column" in rejects["nocol.csv"]
    assert "over the 100,000-byte limit" in rejects["huge.txt"]
    assert stored == {"good1.txt", "good2.html", "latin1.txt", "mixed.txt", "feed.jsonl"}
    assert any(k.endswith("latin1.txt") and v != "utf-8" for k, v in encodings.items())
    err = r.stderr.decode()
    for name in ("empty.txt", "blob.txt", "bad.json", "feed.jsonl#2", "nocol.csv", "huge.txt"):
        assert name in err
    # fix two inputs; the next run picks them up and still reports the others
    (d / "bad.json").write_text(json.dumps({"title": "Coding Auditor", "description": "CPMA required. Audit coders."}))
    (d / "nocol.csv").write_text("title,description\nCoder,CPC required and 2 years coding experience\n")
    r2 = run_cli("--db", str(db), "run", str(d), "--out", str(tmp_path / "out"), "--max-bytes", "100000")
    assert r2.returncode == EXIT_REJECTS
    assert b"2 new" in r2.stdout
    s = run_cli("--db", str(db), "status", "--json")
    info = json.loads(s.stdout)
    assert info["pending_extraction"] == 0 and len(info["last_run_rejects"]) == 4


def test_hostile_text_is_inert_everywhere(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "nul.txt").write_bytes(b"Medical Coder\n\nCPC\x00 required.\x00 <script>alert(1)</script>")
    (d / "long.txt").write_text("Medical Biller " + "denials " * 130000)  # ~1 MB on one line
    (d / "ids.jsonl").write_text(json.dumps({"id": "../../../tmp/evil", "title": "=HYPERLINK(\"x\")", "description": "@SUM(1) CPB preferred"}) + "\n")
    out = tmp_path / "out"
    r = run_cli("--db", str(tmp_path / "h.duckdb"), "run", str(d), "--out", str(out))
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == ["jobfit.csv", "jobfit.html", "jobfit.jsonl", "jobfit.md"]
    html = (out / "jobfit.html").read_text()
    assert "<script>alert(1)" not in html
    for row in list(csv.reader((out / "jobfit.csv").open()))[1:]:
        assert not any(c.startswith(("=", "+", "-", "@")) for c in row)
    assert "\x00" not in (out / "jobfit.jsonl").read_text()
    assert not Path("/tmp/evil").exists()


def test_schema_org_jobposting_json_and_html(tmp_path):
    jp = {
        "@context": "https://schema.org", "@type": "JobPosting", "title": "Remote Medical Coder",
        "description": "<p>Code pro-fee encounters. <b>CPC required.</b> Pay about $20 an hour.</p>",
        "datePosted": "2026-11-01", "hiringOrganization": {"@type": "Organization", "name": "Acme Health"},
        "jobLocationType": "TELECOMMUTE", "employmentType": "FULL_TIME",
        "baseSalary": {"@type": "MonetaryAmount", "currency": "USD",
                       "value": {"@type": "QuantitativeValue", "minValue": 24, "maxValue": 29, "unitText": "HOUR"}},
        "experienceRequirements": {"@type": "OccupationalExperienceRequirements", "monthsOfExperience": 18},
        "qualifications": "CCS or CCS-P a plus",
    }
    (tmp_path / "jp.json").write_text(json.dumps(jp))
    page = ("<html><head><script type=\"application/ld+json\">" + json.dumps({"@graph": [{"@type": "WebPage"}, {**jp, "title": "Coder (page)"}]})
            + "</script></head><body><h1>Ignored visible title</h1><p>Unrelated page chrome.</p></body></html>")
    (tmp_path / "page.html").write_text(page)
    r = run_cli("extract", str(tmp_path / "jp.json"), str(tmp_path / "page.html"), "--format", "json")
    assert r.returncode == 0, r.stderr.decode()
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert [x["title"] for x in recs] == ["Remote Medical Coder", "Coder (page)"]
    for rec in recs:
        assert rec["salary"]["min"] == 24 and rec["salary"]["max"] == 29 and rec["salary"]["period"] == "hour"
        assert rec["salary"]["annual_min"] == 24 * 2080
        assert rec["work_arrangement"] == "remote" and rec["employment_type"] == "full_time"
        assert rec["experience_years_min"] == 1.5
        assert rec["company"] == "Acme Health"
        creds = {c["id"]: c["requirement"] for c in rec["certifications"]}
        assert creds["CPC"] == "required" and creds.get("CCS") == "preferred"


def test_jobspy_export_and_column_mapping(tmp_path):
    f = tmp_path / "jobspy.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "site", "job_url", "title", "company", "location", "date_posted", "job_type", "interval", "min_amount", "max_amount", "currency", "is_remote", "description"])
        w.writerow(["in-1", "indeed", "https://example.test/1", "Medical Biller", "Acme", "Austin, TX", "2026-11-20", "fulltime", "yearly", "42000", "50000", "USD", "True", "Work denials and A/R. CPB preferred."])
    r = run_cli("extract", str(f), "--format", "json")
    rec = json.loads(r.stdout)
    assert rec["posting_id"] == "in-1" and rec["company"] == "Acme"
    assert rec["salary"]["min"] == 42000 and rec["salary"]["period"] == "year"
    assert rec["work_arrangement"] == "remote" and rec["employment_type"] == "full_time"
    g = tmp_path / "custom.csv"
    g.write_text("ref,job_name,body_html\nx9,Coding Auditor,<p>CPMA required.</p>\n")
    r = run_cli("--db", str(tmp_path / "m.duckdb"), "ingest", str(g), "--map", "text=body_html", "--map", "title=job_name", "--map", "id=ref")
    assert r.returncode == 0, r.stderr.decode()
    con = duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True)
    assert con.execute("SELECT posting_id, title FROM postings").fetchall() == [("x9", "Coding Auditor")]
    con.close()
    r = run_cli("--db", str(tmp_path / "m.duckdb"), "ingest", str(g), "--map", "text=nope")
    assert r.returncode == EXIT_REJECTS and b"no column 'nope'" in r.stderr
    r = run_cli("--db", str(tmp_path / "m.duckdb"), "ingest", str(g), "--map", "bogus")
    assert r.returncode == 2


def test_runs_status_prune(tmp_path):
    db = tmp_path / "r.duckdb"
    assert run_cli("--db", str(db), "run", str(SAMPLES / "txt"), "--out", str(tmp_path / "o")).returncode == 0
    r = run_cli("--db", str(db), "runs", "--json")
    row = json.loads(r.stdout.splitlines()[0])
    assert row["status"] == "ok" and row["new"] == 6 and row["extracted"] == 6
    assert json.loads(run_cli("--db", str(db), "status", "--json").stdout)["pending_extraction"] == 0
    r = run_cli("--db", str(db), "prune", "--older-than", "0")
    assert r.returncode == 0 and b"pruned 1 run" in r.stdout
    assert run_cli("--db", str(db), "runs", "--json").stdout.strip() == b""
    assert json.loads(run_cli("--db", str(db), "status", "--json").stdout)["postings"] == 6


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    for name in ("jobfit-nightly.service", "jobfit-nightly.timer"):
        text = (ROOT / "deploy" / name).read_text()
        # verify needs the binary to exist: point it at the installed console script
        (tmp_path / name).write_text(text.replace("/opt/jobfit/.venv/bin/jobfit", str(Path(sys.executable).with_name("jobfit"))))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "jobfit-nightly.service"), str(tmp_path / "jobfit-nightly.timer")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "jobfit-nightly" not in r.stderr, r.stderr  # no warnings about our units


def test_crontab_line_is_well_formed():
    lines = [ln for ln in (ROOT / "deploy" / "crontab").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert fields[:5] == ["30", "2", "*", "*", "*"] and "jobfit run" in fields[5]


def test_two_processes_store_exactly_what_one_does(tmp_path, corpus, clean_run):
    """Worker processes return compact records; the database and reports equal the one-process run."""
    db, out = tmp_path / "j2.duckdb", tmp_path / "reports"
    exe = Path(sys.executable).with_name("jobfit")
    p = subprocess.run([str(exe), "--db", str(db), "run", str(corpus), "--out", str(out), "-j", "2",
                        "--profile", str(PROFILES / "cpb_biller.yaml")], capture_output=True, timeout=600,
                       env={**os.environ, "JOBFIT_BATCH": "40"})
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    assert dump(db) == clean_run[0]
    assert report_files(out) == clean_run[1]


def test_unchanged_files_are_not_read_again(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        (d / f"p{i}.txt").write_text(f"Medical Biller {i}\n\nWork denials and A/R. CPB preferred.")
    (d / "bad.json").write_text("{nope")
    db = str(tmp_path / "f.duckdb")
    first = run_cli("--db", db, "run", str(d), "--out", str(tmp_path / "o"), "--log-json")
    assert first.returncode == EXIT_REJECTS
    (d / "p1.txt").write_text("Medical Biller 1\n\nWork denials and A/R. CPB required now.")
    second = run_cli("--db", db, "run", str(d), "--out", str(tmp_path / "o"), "--log-json")
    assert second.returncode == EXIT_REJECTS  # the unchanged broken file is still reported
    end = [json.loads(x) for x in second.stderr.decode().splitlines() if '"run_end"' in x][0]
    assert (end["new"], end["updated"], end["unchanged"], end["rejected"], end["extracted"]) == (0, 1, 2, 1, 1)
    full = run_cli("--db", db, "run", str(d), "--out", str(tmp_path / "o"), "--log-json", "--full")
    end = [json.loads(x) for x in full.stderr.decode().splitlines() if '"run_end"' in x][0]
    assert (end["unchanged"], end["extracted"]) == (3, 3)


def test_operator_mistakes_on_feeds(tmp_path):
    """Findings of an operator-style review: a file named twice, PropertyValue identifiers,
    duplicate ids with other text, an unwritable --out, prune of interrupted runs."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.txt").write_text("Medical Biller\n\nWork denials. CPB preferred.")
    for i in (1, 2, 3):
        (d / f"jp{i}.json").write_text(json.dumps({"@type": "JobPosting", "title": f"Medical Coder {i}", "description": "CPC required.",
                                                   "identifier": {"@type": "PropertyValue", "name": "Acme Health", "value": f"REQ-{i}"}}))
    (d / "dupe.jsonl").write_text(json.dumps({"id": "7", "title": "Coder", "description": "CPC required."}) + "\n"
                                  + json.dumps({"id": "7", "title": "HIM Tech", "description": "Release of information."}) + "\n")
    db = tmp_path / "o.duckdb"
    r = run_cli("--db", str(db), "run", str(d), str(d / "a.txt"), "--out", str(tmp_path / "out"))
    assert r.returncode == EXIT_REJECTS, r.stderr.decode()
    assert b"duplicate id '7'" in r.stderr and b"Traceback" not in r.stderr
    con = duckdb.connect(str(db), read_only=True)
    ids = sorted(x for (x,) in con.execute("SELECT posting_id FROM postings").fetchall())
    con.close()
    assert len(ids) == 5 and {"7", "REQ-1", "REQ-2", "REQ-3"} <= set(ids)
    assert [i for i in ids if i.endswith("/in/a.txt")] == [str((d / "a.txt").resolve())]
    bad_out = tmp_path / "file-not-dir"
    bad_out.write_text("x")
    r = run_cli("--db", str(tmp_path / "o2.duckdb"), "run", str(d), "--out", str(bad_out / "sub"), "--log-json")
    assert r.returncode == 2 and not (tmp_path / "o2.duckdb").exists()
    assert json.loads(r.stderr.decode().splitlines()[-1])["event"] == "error"
    assert run_cli("--db", str(db), "run", str(d), "--out", str(tmp_path / "out"), "--max-bytes", "0").returncode == 2
    assert run_cli("--db", str(db), "runs", "--limit", "-1").returncode == 2
