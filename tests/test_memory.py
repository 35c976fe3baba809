"""Flat memory (issue 5): DuckDB's buffer pool is capped, exports stream a page of postings at a
time, roles are classified in chunks — and none of it changes what is stored or written."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner

from pipeline import export, report, runner, store
from pipeline.cli import cli

from conftest import PROFILES, SAMPLES


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_a_store_caps_duckdb_memory_and_the_cap_can_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv("JOBFIT_DUCKDB_MEMORY", raising=False)
    con = store.connect(tmp_path / "a.duckdb")
    assert _limit(con) == "244.1 MiB"  # 256 MB, as DuckDB prints it
    con.close()
    monkeypatch.setenv("JOBFIT_DUCKDB_MEMORY", "1GB")
    con = store.connect(tmp_path / "a.duckdb")
    assert _limit(con) == "953.6 MiB"  # 1 GB
    con.close()
    assert _limit(store.connect(":memory:")) != "953.6 MiB"  # jobfit score's in-memory store is not capped


def test_a_bad_memory_setting_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("JOBFIT_DUCKDB_MEMORY", "lots")
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "b.duckdb"), "status"])
    assert r.exit_code != 0
    assert "JOBFIT_DUCKDB_MEMORY='lots' is not a memory size" in r.output
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    db = tmp_path_factory.mktemp("mem") / "m.duckdb"
    r = CliRunner().invoke(cli, ["--db", str(db), "run", str(SAMPLES), "--profiles", str(PROFILES),
                                 "--out", str(db.parent / "reports")])
    assert r.exit_code in (0, 3), r.output
    return db


def test_paged_records_equal_one_page(filled):
    con = duckdb.connect(str(filled), read_only=True)
    try:
        whole = list(export.records(con, page=10**9))
        assert len(whole) > 20
        for page in (1, 3, 7):
            assert list(export.records(con, page=page)) == whole
        ids = [r["posting_id"] for r in whole][::3]
        assert list(export.records(con, ids, page=2)) == [r for r in whole if r["posting_id"] in set(ids)]
        assert list(export.records(con, [])) == []
    finally:
        con.close()


def test_streamed_exports_hold_every_posting_in_order(filled, tmp_path, monkeypatch):
    """CSV and JSON Lines are written a record at a time; with pages of 2 postings they must be
    byte-identical to one page, and hold exactly the records export.records gives."""
    con = duckdb.connect(str(filled), read_only=True)
    try:
        monkeypatch.setattr(export, "PAGE", 10**9)
        a = tmp_path / "one"
        report.write_reports(con, a, ("csv", "json", "md", "html"))
        monkeypatch.setattr(export, "PAGE", 2)
        b = tmp_path / "paged"
        report.write_reports(con, b, ("csv", "json", "md", "html"))
        for name in ("jobfit.csv", "jobfit.jsonl", "jobfit.md", "jobfit.html"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        lines = (b / "jobfit.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(x)["posting_id"] for x in lines] == [r["posting_id"] for r in export.records(con)]
        assert len((b / "jobfit.csv").read_text(encoding="utf-8").splitlines()) == len(lines) + 1
    finally:
        con.close()


def test_roles_in_chunks_equal_roles_in_one_go(filled, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "c.duckdb"
    shutil.copy(filled, copy)
    ctx = runner.open_context(str(copy))
    try:
        before = ctx.con.execute("SELECT * FROM posting_roles ORDER BY posting_id").fetchall()
        monkeypatch.setattr(runner, "ROLE_CHUNK", 4)
        res = runner.match(ctx, None, reclassify=True)
        assert res.n_postings == len(before)
        assert ctx.con.execute("SELECT * FROM posting_roles ORDER BY posting_id").fetchall() == before
    finally:
        ctx.con.close()


def test_out_of_memory_is_retried_with_a_larger_cap(tmp_path, monkeypatch):
    """A statement DuckDB cannot spill (one list of 20 million numbers) fails under the cap; the
    work is run again with the cap doubled until it fits, and each raise is reported."""
    monkeypatch.setenv("JOBFIT_DUCKDB_MEMORY", "1MB")  # below the floor: raised to 64 MiB
    con = store.connect(tmp_path / "o.duckdb")
    try:
        assert _limit(con) == "64.0 MiB"
        query = "SELECT len(list(i)) FROM range(20000000) t(i)"
        with pytest.raises(duckdb.OutOfMemoryException):
            con.execute(query)
        raised: list[int] = []
        assert store.with_memory(con, lambda: con.execute(query).fetchone()[0], raised.append) == 20_000_000
        assert raised and raised == sorted(raised) and raised[0] == 128 << 20
    finally:
        con.close()


def test_a_transaction_that_runs_out_of_memory_is_rolled_back_and_run_again(tmp_path, monkeypatch):
    monkeypatch.setenv("JOBFIT_DUCKDB_MEMORY", "64MB")
    events: list[tuple[str, dict]] = []
    ctx = runner.open_context(str(tmp_path / "t.duckdb"), events=lambda name, **kw: events.append((name, kw)))
    try:
        ctx.con.execute("CREATE TABLE t (n BIGINT)")
        attempts = []

        def work() -> int:
            attempts.append(1)
            ctx.con.execute("INSERT INTO t VALUES (1)")  # must not survive the failed attempt
            return ctx.con.execute("SELECT len(list(i)) FROM range(20000000) t(i)").fetchone()[0]

        assert runner._in_transaction(ctx, work) == 20_000_000
        assert len(attempts) > 1
        assert ctx.con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
        assert [name for name, _ in events].count("duckdb_memory") == len(attempts) - 1
    finally:
        ctx.con.close()
