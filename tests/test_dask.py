"""The Dask engine (issue 6): same database rows and JSON export as the local engine, bad inputs set
aside the same way, a worker killed mid-run costs nothing, and the user's mistakes are one line.

One LocalCluster of two worker processes is shared by the module (starting one costs seconds); the
CLI reaches it through --scheduler. One test lets the CLI start its own LocalCluster in a subprocess.
Small partitions (JOBFIT_PARTITION) make a few dozen postings span many partitions and ranges.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from conftest import PROFILES, REAL, ROOT, SAMPLES, needs_real, run_cli

distributed = pytest.importorskip("distributed", reason="the optional Dask extra is not installed (pip install -e '.[dask]')")

TABLES = ("postings", "extractions", "extraction_items", "extraction_codes", "extraction_signals", "posting_roles",
          "matches", "profiles", "rejects", "files")
PROFILE = str(PROFILES / "experienced_cpc_coder.yaml")


@pytest.fixture(scope="module")
def cluster(nlp):
    """Two single-threaded worker processes, as on a 2-core machine; the pipeline is already cached
    (the nlp fixture), so the workers load it rather than build it."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=50) as lc, Client(lc) as client:
        yield lc.scheduler_address, client


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """The sample postings plus inputs a nightly feed really has: an empty file, a binary file, a
    CSV without a text column, and a JSONL feed with a malformed line, a blank line, a record
    without text and an id claimed twice with different text (the first wins, the second is a reject)."""
    d = tmp_path_factory.mktemp("mixed")
    shutil.copytree(SAMPLES, d / "samples")
    (d / "bad").mkdir()
    (d / "bad" / "empty.txt").write_text("")
    (d / "bad" / "blob.txt").write_bytes(b"\0\1\2" * 200)
    (d / "bad" / "no_text.csv").write_text("title,company\nCoder,Acme\n")
    base = (SAMPLES / "txt" / "medical_biller_desert_sun.txt").read_text()
    lines = []
    for i in range(14):
        lines.append(json.dumps({"id": f"feed-{i}", "title": f"Medical Coder {i}", "description": f"{base}\nRequisition {i}."}))
    lines[3] = '{"id": "broken", "title": '  # malformed
    lines[5] = ""
    lines[7] = json.dumps({"id": "no-text", "title": "Coder"})
    lines.append(json.dumps({"id": "feed-2", "title": "Other", "description": "Completely different text for the same id here."}))
    (d / "feed.jsonl").write_text("\n".join(lines) + "\n")
    return d


def _snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}
    finally:
        con.close()


def _run(args: list[str], env: dict[str, str] | None = None):
    res = CliRunner().invoke(__import__("pipeline.cli", fromlist=["cli"]).cli, args, env=env, catch_exceptions=False)
    return res


def _local(tmp: Path, paths: list[str]) -> tuple[int, Path, Path]:
    db, out = tmp / "local.duckdb", tmp / "local_out"
    res = _run(["--db", str(db), "run", *paths, "--profile", PROFILE, "--out", str(out), "--format", "json,csv"])
    return res.exit_code, db, out


def _dask(tmp: Path, paths: list[str], address: str, partition: str = "3"):
    db, out = tmp / "dask.duckdb", tmp / "dask_out"
    res = _run(["--db", str(db), "run", *paths, "--profile", PROFILE, "--out", str(out), "--format", "json,csv",
                "--engine", "dask", "--scheduler", address], env={"JOBFIT_PARTITION": partition})
    return res, db, out


def _assert_same(local_db: Path, local_out: Path, dask_db: Path, dask_out: Path) -> None:
    a, b = _snapshot(local_db), _snapshot(dask_db)
    for t in TABLES:
        assert a[t] == b[t], f"table {t} differs between the local and the Dask engine"
    assert a["postings"] and a["extractions"]
    for name in sorted(os.listdir(local_out)):
        assert (local_out / name).read_bytes() == (dask_out / name).read_bytes(), name


def _run_row(db: Path) -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT engine, partitions_done, partitions_failed, partitions_retried, status FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        con.close()


def test_samples_and_bad_inputs_same_as_local(cluster, mixed, tmp_path):
    code_l, db_l, out_l = _local(tmp_path, [str(mixed)])
    res, db_d, out_d = _dask(tmp_path, [str(mixed)], cluster[0])
    assert code_l == 3 and res.exit_code == 3, res.output  # rejects set aside, same exit code
    _assert_same(db_l, out_l, db_d, out_d)
    rejects = _snapshot(db_d)["rejects"]
    assert len(rejects) == 6 and any("malformed JSON line" in r for r in rejects) and any("duplicate id 'feed-2'" in r for r in rejects)
    engine, done, failed, retried, status = _run_row(db_d)
    # 28 + 13 postings at 3 a partition: well over a dozen read and extract partitions
    assert (engine, failed, status) == ("dask", 0, "rejects") and done >= 20 and retried == 0
    assert "partitions done" in res.output
    # a rerun reads nothing again (fingerprints), extracts nothing, and changes no data row
    before = _snapshot(db_d)
    again, _, _ = _dask(tmp_path, [str(mixed)], cluster[0])
    assert again.exit_code == 3 and "0 new" in again.output and "extracted 0" in again.output
    after = _snapshot(db_d)
    assert {t: after[t] for t in TABLES if t != "rejects"} == {t: before[t] for t in TABLES if t != "rejects"}


@needs_real
def test_real_postings_same_as_local(cluster, tmp_path):
    code_l, db_l, out_l = _local(tmp_path, [str(REAL)])
    res, db_d, out_d = _dask(tmp_path, [str(REAL)], cluster[0], partition="4")
    assert res.exit_code == code_l, res.output
    _assert_same(db_l, out_l, db_d, out_d)


def _corpus(tmp: Path, n: int = 240) -> Path:
    """n distinct postings (varied sample texts) in one JSONL: enough extraction work per partition
    that a worker can be killed while it is busy."""
    texts = [p.read_text() for p in sorted((SAMPLES / "txt").glob("*.txt")) + sorted((SAMPLES / "md").glob("*.md"))]
    d = tmp / "corpus"
    d.mkdir()
    with (d / "postings.jsonl").open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"p{i}", "description": f"{texts[i % len(texts)]}\nReference number {i}."}) + "\n")
    return d


def test_worker_killed_mid_run_equals_clean_run(cluster, tmp_path, monkeypatch):
    """SIGKILL one worker process while it extracts a partition: Dask reruns the partition on a
    live (or restarted) worker and the stored rows equal a clean run's, none lost, none doubled."""
    from pipeline import engine_dask

    address, client = cluster
    corpus = _corpus(tmp_path)
    code_l, db_l, out_l = _local(tmp_path, [str(corpus)])
    killed: list[int] = []
    real_events = engine_dask.DaskEngine.track

    def track(self, con, run_id):
        real_events(self, con, run_id)
        outer = self.events

        def events(event, **fields):
            outer(event, **fields)
            if event == "partition_done" and fields.get("phase") == "extract" and not killed:
                busy = [w for w, keys in client.processing().items() if any(str(k).startswith("_extract_task") for k in keys)]
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        self.events = events

    monkeypatch.setattr(engine_dask.DaskEngine, "track", track)
    res, db_d, out_d = _dask(tmp_path, [str(corpus)], address, partition="40")
    assert killed, "no worker was killed: the test did not test anything"
    assert res.exit_code == code_l == 0, res.output
    _assert_same(db_l, out_l, db_d, out_d)
    engine, done, failed, retried, status = _run_row(db_d)
    assert failed == 0 and retried >= 1 and status == "ok"
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next test


def test_cli_starts_its_own_local_cluster(tmp_path):
    """No --scheduler: the CLI starts and stops a LocalCluster; --log-json stays JSON Lines even
    with worker processes around, and the export equals the local engine's."""
    out_l, out_d = tmp_path / "l", tmp_path / "d"
    local = run_cli("--db", str(tmp_path / "l.duckdb"), "run", str(SAMPLES), "--out", str(out_l), "--format", "json")
    r = run_cli("--db", str(tmp_path / "d.duckdb"), "run", str(SAMPLES), "--out", str(out_d), "--format", "json",
                "--engine", "dask", "-j", "2", "--log-json", env={"JOBFIT_PARTITION": "8"})
    assert local.returncode == 0 and r.returncode == 0, r.stderr.decode()[-2000:]
    lines = [line for line in r.stderr.decode().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), lines  # every line is JSON
    events = [json.loads(line) for line in lines]
    done = [e for e in events if e["event"] == "partition_done"]
    assert done and done[-1]["failed"] == 0 and {e["phase"] for e in done} == {"read", "extract"}
    assert (out_l / "jobfit.jsonl").read_bytes() == (out_d / "jobfit.jsonl").read_bytes()


def test_without_dask_installed_one_line_exit_2(tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; from pipeline.cli import cli; "
            f"cli(['--db', {str(tmp_path / 'x.duckdb')!r}, 'run', {str(SAMPLES)!r}, '--engine', 'dask', '--out', {str(tmp_path)!r}], prog_name='jobfit')")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "Traceback" not in err and err.strip().count("\n") == 0 and 'pip install "jobfit[dask]"' in err
    assert not (tmp_path / "x.duckdb").exists()  # nothing started


def test_unreachable_scheduler_and_usage_errors(tmp_path):
    res = _run(["--db", str(tmp_path / "x.duckdb"), "run", str(SAMPLES), "--out", str(tmp_path), "--engine", "dask",
                "--scheduler", "tcp://127.0.0.1:9"], env={"JOBFIT_DASK_TIMEOUT": "2"})
    assert res.exit_code == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in res.output
    assert not (tmp_path / "x.duckdb").exists()
    res = _run(["--db", str(tmp_path / "x.duckdb"), "run", str(SAMPLES), "--out", str(tmp_path), "--scheduler", "tcp://h:1"])
    assert res.exit_code == 2 and "--scheduler needs --engine dask" in res.output


def test_ranges_read_what_a_whole_read_reads(mixed):
    """Cutting a JSONL or CSV file into record ranges loses, repeats and renumbers nothing."""
    from pipeline.engine_dask import _read_task, plan_reads
    from pipeline.ingest import Reject, iter_files, read_path

    files = list(iter_files([str(mixed)]))
    for size in (1, 2, 3, 5, 100):
        parts = plan_reads(files, size, 5 * 1024 * 1024)
        if size == 2:
            assert any(p.records for p in parts) and any(len(p.files) == 2 for p in parts)
        got: dict[str, list] = {}
        for part in parts:
            for path, items in _read_task(part, 5 * 1024 * 1024, {}):
                for it in items:
                    if isinstance(it, Reject) and it.record is None and it in got.get(path, []):
                        continue  # file-level rejects repeat per range; the engine keeps the first
                    got.setdefault(path, []).append(it)
        for path in files:
            assert got.get(path, []) == list(read_path(path)), (path, size)
