"""Ingest: every format in, broken inputs set aside with a reason, the batch goes on."""

from __future__ import annotations

import gzip
import json

from pipeline.ingest import Posting, Reject, normalize_text, read_postings
from tests.conftest import SAMPLES


def _all(paths):
    items = list(read_postings([str(p) for p in paths]))
    return [i for i in items if isinstance(i, Posting)], [i for i in items if isinstance(i, Reject)]


def test_samples_every_format_reads(tmp_path):
    posts, rejects = _all([SAMPLES])
    assert rejects == []
    formats = {p.format for p in posts}
    assert {"text", "markdown", "html", "json", "jsonl", "csv"} <= formats
    # multi-record files give path#N sources
    assert any(p.source.endswith(".jsonl#2") for p in posts)
    assert any(p.source.endswith(".csv#3") for p in posts)
    for p in posts:
        assert p.title and p.title in p.text.split("\n", 1)[0]


def test_html_scripts_dropped_and_layout_kept(tmp_path):
    f = tmp_path / "p.html"
    f.write_text("<html><head><title>x</title><script>alert('pwn')</script></head><body><h1>Medical Coder</h1>"
                 "<h2>Requirements</h2><ul><li>CPC&reg; required</li><li>2+ years</li></ul>"
                 "<p onclick=\"evil()\">Pay: $20&ndash;$24/hr</p></body></html>", encoding="utf-8")
    (p,), _ = _all([f])
    assert p.title == "Medical Coder"
    assert "alert" not in p.text and "evil" not in p.text
    lines = p.text.split("\n")
    assert "Requirements" in lines
    assert any(line.strip().endswith("CPC® required") for line in lines)
    assert "$20–$24/hr" in p.text


def test_bad_inputs_are_rejected_with_reasons_and_good_ones_kept(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02" * 200)
    (tmp_path / "broken.json").write_text('{"title": "Coder", "description": ')
    (tmp_path / "mixed.jsonl").write_text(
        json.dumps({"id": "a", "title": "Medical Coder", "description": "CPC required, 2 years experience."}) + "\n"
        + "{not json}\n"
        + json.dumps({"id": "c", "title": "Medical Biller", "description": "Work denials and A/R follow-up."}) + "\n")
    (tmp_path / "notext.csv").write_text("title,company\nCoder,Acme\n")
    (tmp_path / "latin1.txt").write_bytes("Codificador médico\n\nSe requiere CPC. Salario 20 EUR por hora, experiencia 2 años.".encode("latin-1"))
    posts, rejects = _all([tmp_path])
    reasons = {r.source.split("/")[-1]: r.reason for r in rejects}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "malformed JSON" in reasons["broken.json"]
    assert "malformed JSON line" in reasons["mixed.jsonl#2"]
    assert "no text column" in reasons["notext.csv"]
    ids = {p.posting_id for p in posts}
    assert {"a", "c"} <= ids
    latin = next(p for p in posts if p.source.endswith("latin1.txt"))
    assert "médico" in latin.text and latin.encoding != "utf-8"


def test_gzipped_jsonl_and_stdin(tmp_path):
    f = tmp_path / "feed.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "g1", "title": "Coding Auditor", "description": "CPMA required."}) + "\n")
    posts, _ = _all([f])
    assert [p.posting_id for p in posts] == ["g1"] and posts[0].source.endswith("feed.jsonl.gz#1")
    import io

    items = list(read_postings(["-"], stdin=io.BytesIO(b"Medical Biller\n\nCPB preferred. Remote.")))
    assert items[0].source == "-" and items[0].title == "Medical Biller"


def test_normalize_text_is_canonical():
    raw = "Title\r\n\r\n\r\n\r\nLine\u00a0one\t two  \x00\nend  "
    assert normalize_text(raw) == "Title\n\nLine one two\nend"
    assert normalize_text(normalize_text(raw)) == normalize_text(raw)
