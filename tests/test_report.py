"""The report: self-contained HTML, Markdown with figures, CSV tables, sentences with numbers."""

from __future__ import annotations

import re

import pytest

from bayes_alliance.report import build_sections, sentences, write_report


def test_report_files_and_self_contained_html(recovery, tmp_path):
    *_, data, result = recovery
    path = write_report(result, tmp_path / "rep", patients=[data.patients[0], data.patients[3]])
    html = path.read_text()
    # Self-contained: every image is a data URI, nothing is fetched.
    assert not re.search(r"(?:src|href)=.(?:http|//|file:)", html)
    assert (
        html.count("data:image/png;base64,") == 5
    )  # forest, R-squared, two patients, predictive check
    for title in (
        "Summary in words",
        "Data",
        "Convergence",
        "Named effects",
        "Trait and state effects",
        "Variance of symptoms explained",
        "chosen patients",
        "Posterior predictive check",
        "Classic two-step analysis",
        "Why decompose",
    ):
        assert title in html, title
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {
        "report.html",
        "report.md",
        "summary.csv",
        "r2.csv",
        "effects.csv",
        "forest.png",
        "r2.png",
        "ppc.png",
    } <= files
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "![forest](forest.png)" in md
    with pytest.raises(FileExistsError):
        write_report(result, tmp_path / "rep")


def test_sentences_carry_the_numbers(recovery):
    *_, result = recovery
    s = result.summary()
    text = " ".join(sentences(result, s, result.r2(), 0.94))
    m = s.loc["state_effect"]
    assert f"{abs(m['mean']):.3f} points in symptoms" in text
    assert f"({m['ci_low']:.3f} to {m['ci_high']:.3f})" in text
    assert "Of the total variance of symptoms" in text


def test_unknown_patient_is_named(recovery):
    *_, result = recovery
    with pytest.raises(ValueError, match=r"unknown patient id\(s\) \['ghost'\]"):
        build_sections(result, patients=["ghost"])
