"""Shared fixtures: the real taxonomy, the real spaCy pipeline (cached in a temp dir), paths.

Tests that need ../shared (real postings, the CMS HCPCS file, the NHS corpus) skip with a reason
when it is absent: a user's clone has no shared/ folder, CI does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("JOBFIT_SHARED", ROOT.parent / "shared"))
REAL = SHARED / "real_postings"
HCPCS = SHARED / "domain" / "hcpcs" / "hcpcs_level2_2020.csv"
SAMPLES = ROOT / "sample_postings"
PROFILES = ROOT / "sample_profiles"
GOLD = ROOT / "tests" / "gold" / "samples_gold.jsonl"

needs_real = pytest.mark.skipif(not (REAL / "gold.jsonl").exists(), reason=f"shared real postings not found at {REAL} (only CI and developers have ../shared)")
needs_hcpcs = pytest.mark.skipif(not HCPCS.exists(), reason=f"CMS HCPCS file not found at {HCPCS} (only CI and developers have ../shared)")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test (and every subprocess it starts) uses one throw-away pipeline cache."""
    d = tmp_path_factory.mktemp("jobfit-cache")
    os.environ["JOBFIT_CACHE"] = str(d)
    return d


@pytest.fixture(scope="session")
def tax():
    from pipeline.taxonomy import load_taxonomy, require_valid

    return require_valid(load_taxonomy())


@pytest.fixture(scope="session")
def nlp(tax):
    from pipeline.nlp import load_nlp

    return load_nlp(tax)


@pytest.fixture(scope="session")
def extract_text(tax, nlp):
    """Extract one posting written inline in a test: returns the JSON-contract record."""
    from pipeline.ingest import Posting
    from pipeline.runner import quick_extract

    def run(text: str, title: str | None = None) -> dict:
        from pipeline.ingest import normalize_text

        body = normalize_text(text)
        if title:
            body = f"{title}\n\n{body}"
        else:
            title = body.split("\n", 1)[0]
        return quick_extract([Posting("t", "inline", title, body, "text")], tax)[0]

    return run


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("jobfit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
    return subprocess.run(cmd + list(args), cwd=cwd or ROOT, env={**os.environ, **(env or {})}, input=stdin, capture_output=True, timeout=600)
