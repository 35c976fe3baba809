"""The HTML reports as a person sees them: rendered by headless Chromium (Debian's package).

`--dump-dom` prints the page after its scripts have run, so these tests see the rows and charts
a reader sees, that the report's own script ran, and that no script hidden in posting text did.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from tests.conftest import PROFILES, SAMPLES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs it when run as root with apt)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=2000"]


def render(page: Path, tmp_path: Path, screenshot: Path | None = None) -> str:
    profile = tmp_path / f"chrome-{page.stem}"
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    if screenshot is not None:
        args += [f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri()]
    else:
        args += ["--dump-dom", page.as_uri()]
    r = subprocess.run(args, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r.stdout.decode()


class Seen(HTMLParser):
    """What the rendered DOM holds: table rows per table id, svg ids and their bars, attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self.svgs: dict[str, int] = {}
        self.html_attrs: dict[str, str | None] = {}
        self._table: str | None = None
        self._in_body = False
        self._svg: str | None = None
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_attrs = a
        if tag == "table":
            self._table = a.get("id")
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body and self._table:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1
        if tag == "svg":
            self._svg = a.get("id")
            self.svgs[self._svg] = 0
        if tag == "rect" and self._svg:
            self.svgs[self._svg] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._table = None
        if tag == "svg":
            self._svg = None

    def handle_data(self, data):
        self.texts.append(data)


def seen(dom: str) -> Seen:
    s = Seen()
    s.feed(dom)
    return s


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    feed = tmp / "feed"
    shutil.copytree(SAMPLES, feed)
    hostile = {
        "id": "evil-1",
        "title": "Medical Coder <script>document.documentElement.setAttribute('data-pwned','title')</script>",
        "description": ("Medical Coder\nCPC required <img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">. "
                        "ICD-10-CM and CPT. </mark><script>document.documentElement.setAttribute('data-pwned','body')</script>"
                        "<svg onload=\"document.documentElement.setAttribute('data-pwned','svg')\"></svg>"),
    }
    (feed / "hostile.jsonl").write_text(json.dumps(hostile) + "\n")
    out = tmp / "out"
    r = CliRunner().invoke(cli, ["--db", str(tmp / "b.duckdb"), "run", str(feed), "--profiles", str(PROFILES), "--top", "25",
                                 "--out", str(out), "--format", "html"])
    assert r.exit_code == 0, r.output
    return tmp, out


def test_profile_report_shows_ranked_rows_charts_and_cards(reports, tmp_path):
    tmp, out = reports
    page = out / "jobfit-experienced_cpc_coder.html"
    s = seen(render(page, tmp_path))
    assert s.html_attrs.get("data-jobfit-ready") == "1"  # scripts do run in this browser
    import duckdb

    con = duckdb.connect(str(tmp / "b.duckdb"), read_only=True)
    kept, top = con.execute("SELECT count(*), count(rank_in_profile) FROM matches WHERE profile_id = 'experienced_cpc_coder'").fetchone()
    con.close()
    assert top == 25 and s.rows["ranked"] == kept  # every posting kept for this profile, one row each
    for chart in ("chart-fit", "chart-credentials", "chart-code_systems", "chart-pay"):
        assert chart in s.svgs
    assert s.svgs["chart-credentials"] >= 3 and s.svgs["chart-fit"] == 10 and s.svgs["chart-pay"] >= 1
    text = " ".join(s.texts)
    assert "Marcus Okafor" in text and "Fit cards" in text and "BLOCKER" not in text


def test_no_script_from_posting_text_runs(reports, tmp_path):
    tmp, out = reports
    for page in sorted(out.glob("*.html")):
        dom = render(page, tmp_path)
        s = seen(dom)
        assert s.html_attrs.get("data-jobfit-ready") == "1", page
        assert "data-pwned" not in s.html_attrs, (page, s.html_attrs)
        assert not re.search(r"<img[^>]*onerror", dom) and "<svg onload" not in dom
    market = seen(render(out / "jobfit.html", tmp_path))
    shown = " ".join(market.texts)
    assert "<script>document.documentElement" in shown  # shown to the reader as text, not run


def test_reports_of_one_profile_hold_nothing_of_another(reports):
    _, out = reports
    names = {"entry_cca": "Dana Rivera", "experienced_cpc_coder": "Marcus Okafor", "cpb_biller": "Tanya Whitfield"}
    for pid in names:
        for ext in ("html",):
            text = (out / f"jobfit-{pid}.{ext}").read_text()
            for other_id, other_name in names.items():
                if other_id != pid:
                    assert other_name not in text and other_id not in text, (pid, other_id)
    market = (out / "jobfit.html").read_text()
    assert not any(n in market for n in names.values())


def test_screenshot_is_a_real_page(reports, tmp_path):
    tmp, out = reports
    png = tmp_path / "shot.png"
    render(out / "jobfit-entry_cca.html", tmp_path, screenshot=png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses to a few KB
