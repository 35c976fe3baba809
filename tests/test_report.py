"""Reports: complete, and hostile posting text stays inert in every format."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from pipeline.cli import cli

HOSTILE = {
    "id": "../../etc/passwd",
    "title": "<script>alert('t')</script>Medical Coder",
    "description": "=HYPERLINK(\"http://x\")\n<img src=x onerror=alert(1)> CPC required. | pipe | ** md **\n+SUM(A1) -1 @cmd",
}


def test_hostile_text_is_inert(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(HOSTILE) + "\n" + json.dumps({**HOSTILE, "id": "=1+1", "title": "=cmd|' /C calc'!A0"}) + "\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "h.duckdb"), "run", str(feed), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["jobfit.csv", "jobfit.html", "jobfit.jsonl", "jobfit.md"]
    html = (out / "jobfit.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "<img src=x" not in html
    rows = list(csv.reader(io.StringIO((out / "jobfit.csv").read_text())))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    md = (out / "jobfit.md").read_text()
    assert "<script>" not in md
    table_lines = [ln for ln in md.splitlines() if ln.startswith("| ") and "Medical Coder" in ln]
    assert table_lines and all(ln.count("|") - ln.count("\\|") == 7 for ln in table_lines)
    # no file was written outside --out, whatever the posting id says
    assert not (tmp_path / "etc").exists()
    recs = [json.loads(x) for x in (out / "jobfit.jsonl").read_text().splitlines()]
    assert {r["posting_id"] for r in recs} == {"../../etc/passwd", "=1+1"}
