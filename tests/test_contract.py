"""The JSON contract of `jobfit extract --format json`: schema-valid, stable, byte-identical."""

from __future__ import annotations

import json

import jsonschema
import pytest

from pipeline.export import schema
from tests.conftest import REAL, SAMPLES, needs_real, run_cli


def _lines(proc):
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]


def test_samples_meet_the_schema_and_are_deterministic():
    first = run_cli("extract", str(SAMPLES), "--format", "json")
    second = run_cli("extract", str(SAMPLES), "--format", "json")
    assert first.stdout == second.stdout  # byte-identical
    recs = _lines(first)
    assert len(recs) >= 26
    validator = jsonschema.Draft202012Validator(schema())
    for rec in recs:
        validator.validate(rec)
    sources = [r["source"] for r in recs]
    assert any(s.endswith(".jsonl#1") for s in sources)


@needs_real
def test_real_postings_meet_the_schema():
    recs = _lines(run_cli("extract", str(REAL / "relevant"), str(REAL / "negatives"), "--format", "json"))
    assert len(recs) == 29
    validator = jsonschema.Draft202012Validator(schema())
    for rec in recs:
        validator.validate(rec)


def test_schema_rejects_a_broken_record():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"posting_id": "x"}, schema())
