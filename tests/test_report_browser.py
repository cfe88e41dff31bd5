"""The report as a web page, rendered in headless Chromium: every image loads and the page
shows no error.

A copy of the report gets a probe script in its head that records script errors and failed
resources (an ``error`` listener in the capture phase sees both) and, after ``load``, writes the
state of every image into the DOM, which ``--dump-dom`` prints. Console messages (Chromium
logs them to stderr with ``--enable-logging=stderr``) must be absent: the report has no
scripts of its own. The probe is first shown to catch a broken image and a script error on a
hand-made page, so a passing report is not a probe that sees nothing.

Chromium comes from the system packages (``/usr/bin/chromium``; CI installs it); without it
these tests skip with that message.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bayes_alliance.report.write import write_report

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium): the browser test of the "
    "report needs a headless Chromium",
)

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => {
  const src = e.target && e.target.src ? ' ' + e.target.src.slice(0, 40) : '';
  window.__errors.push(String(e.message || e.type) + src);
}, true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const out = {
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    widths: imgs.map(i => i.naturalWidth),
    figures: document.querySelectorAll('figure img').length,
    errors: window.__errors,
    height: document.body.scrollHeight,
    headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a throw-away profile and no network side traffic."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def probe(page: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load ``page`` with the probe; return the probe's record and the console lines."""
    probed = tmp / f"probed_{page.stem}.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    run = _chromium(["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], tmp / "profile")
    found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the page did not finish loading; chromium said:\n{run.stderr[-3000:]}"
    record = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return record, console


@pytest.fixture(scope="module")
def report_page(recovery, tmp_path_factory) -> Path:
    *_, data, result = recovery
    out = tmp_path_factory.mktemp("browser") / "rep"
    return write_report(result, out, patients=[data.patients[1]], ci_prob=0.95)


def test_probe_sees_broken_images_and_script_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><h2>x</h2>"
        "<img alt='corrupt' src='data:image/png;base64,AAAA'>"
        "<img alt='missing' src='missing.png'>"
        "<script>notDefined()</script></body></html>"
    )
    record, console = probe(page, tmp_path)
    assert record["broken"] == ["corrupt", "missing"]
    assert any("notDefined" in e for e in record["errors"])
    assert any("notDefined" in line for line in console)


def test_report_renders_in_a_browser_with_every_image(report_page, tmp_path):
    record, console = probe(report_page, tmp_path)
    assert record["broken"] == [], record
    assert record["errors"] == [] and console == [], (record["errors"], console)
    # trace/rank, forest, R-squared, one patient, predictive check; all inside <figure>
    assert record["images"] == record["figures"] == 5
    assert all(w > 300 for w in record["widths"]), record["widths"]
    assert record["headings"][0] == "Summary in words"
    assert "Posterior predictive check" in record["headings"]
    assert record["height"] > 5000  # the whole report laid out, not an empty page


def test_report_screenshot_is_not_blank(report_page, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    run = _chromium(
        ["--window-size=1100,1400", f"--screenshot={shot}", report_page.as_uri()],
        tmp_path / "profile",
    )
    assert shot.is_file(), run.stderr[-3000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1100)
    # Text and rules of the top of the report: many distinct shades, not one flat colour.
    assert pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
