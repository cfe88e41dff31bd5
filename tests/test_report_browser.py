"""The report as a web page, rendered in headless Chromium: every image loads and the page
shows no error.

The page is loaded with the probe of ``tests/browser.py`` (images, script errors, MathML
layout, console messages). Console messages must be absent: the report has no scripts of its
own. The probe is first shown to catch a broken image and a script error on a
hand-made page, so a passing report is not a probe that sees nothing.

Chromium comes from the system packages (``/usr/bin/chromium``; CI installs it); without it
these tests skip with that message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayes_alliance.report.write import write_report
from tests.browser import CHROMIUM, SKIP_REASON, chromium, probe

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


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


def test_probe_tells_typeset_mathml_from_bare_tags(tmp_path):
    """The same subscript as MathML (laid out: the index sits lower) and as the bare tag
    names outside ``<math>`` (unknown HTML elements on one baseline)."""
    head = "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
    sub = "<msub><mi>x</mi><mi>ti</mi></msub>"
    typeset, bare = tmp_path / "typeset.html", tmp_path / "bare.html"
    typeset.write_text(f"{head}<p><math display='block'>{sub}</math></p></body></html>")
    bare.write_text(f"{head}<p>{sub}</p></body></html>")
    good, _ = probe(typeset, tmp_path)
    assert good["mathml"] and good["maths"] == good["math_native"] == 1
    assert good["sub_lowered"] is True and min(good["math_boxes"][0]) > 0
    plain, _ = probe(bare, tmp_path)
    assert plain["maths"] == 0 and plain["sub_lowered"] is False


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
    run = chromium(
        ["--window-size=1100,1400", f"--screenshot={shot}", report_page.as_uri()],
        tmp_path / "profile",
    )
    assert shot.is_file(), run.stderr[-3000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1100)
    # Text and rules of the top of the report: many distinct shades, not one flat colour.
    assert pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
