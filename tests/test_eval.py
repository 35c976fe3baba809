"""`jobfit eval` against hand-labelled gold: the current figures are floors, so a change that
makes extraction worse fails here. (Raise the floors when the figures improve.)"""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli import cli
from tests.conftest import GOLD, REAL, ROOT, SAMPLES, needs_real, run_cli

HELDOUT = ROOT / "tests" / "heldout"

SAMPLE_FLOORS = {
    ("target_detection", "f1"): 1.0,
    ("role_accuracy",): 1.0,
    ("credentials", "f1"): 1.0,
    ("credential_level_accuracy",): 1.0,
    ("code_systems", "f1"): 1.0,
    ("min_years_exact",): 0.96,
    ("salary_exact",): 1.0,
    ("work_arrangement_exact",): 1.0,
}
REAL_FLOORS = {
    ("target_detection", "f1"): 1.0,
    ("role_accuracy",): 1.0,
    ("credentials", "f1"): 0.96,
    ("credential_level_accuracy",): 1.0,
    ("code_systems", "f1"): 1.0,
    ("min_years_exact",): 1.0,
    ("salary_exact",): 1.0,
    ("work_arrangement_exact",): 1.0,
}


def _get(d: dict, key: tuple) -> float:
    for k in key:
        d = d[k]
    return d


def _check(figures: dict, floors: dict) -> None:
    low = {"/".join(k): (_get(figures, k), v) for k, v in floors.items() if _get(figures, k) < v}
    assert not low, f"below floor (got, floor): {low}"


def test_samples_meet_floors():
    r = CliRunner().invoke(cli, ["eval", str(SAMPLES), "--gold", str(GOLD), "--json"])
    assert r.exit_code == 0, r.output
    figures = json.loads(r.output)
    assert figures["postings"] == 28
    _check(figures, SAMPLE_FLOORS)


@needs_real
def test_real_postings_meet_floors():
    p = run_cli("eval", str(REAL), "--json")
    assert p.returncode == 0, p.stderr.decode()
    figures = json.loads(p.stdout)
    assert figures["postings"] == 29
    _check(figures, REAL_FLOORS)


def test_eval_table_and_errors_listing():
    r = CliRunner().invoke(cli, ["eval", str(SAMPLES), "--gold", str(GOLD), "--errors"])
    assert r.exit_code == 0
    assert "target_detection" in r.output and "salary_exact" in r.output
    r = CliRunner().invoke(cli, ["eval", str(SAMPLES)])
    assert r.exit_code == 2 and "gold file not found" in r.output


HELDOUT_FLOORS = {
    ("target_detection", "f1"): 1.0,
    ("role_accuracy",): 1.0,
    ("credentials", "f1"): 1.0,
    ("credential_level_accuracy",): 1.0,
    ("code_systems", "f1"): 1.0,
    ("min_years_exact",): 1.0,
    ("salary_exact",): 1.0,
    ("work_arrangement_exact",): 1.0,
}


def test_heldout_set_meets_floors():
    """tests/heldout was written by a separate author who never saw the rules; the first look at
    it is recorded in CHANGELOG, these floors are the figures after the fixes it prompted."""
    r = CliRunner().invoke(cli, ["eval", str(HELDOUT), "--json"])
    assert r.exit_code == 0, r.output
    figures = json.loads(r.output)
    assert figures["postings"] == 22
    _check(figures, HELDOUT_FLOORS)
