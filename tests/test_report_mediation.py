"""The report's mediation section: a fit with a baseline gets a section with the path diagram
(a numbered figure) and a sentence with its numbers; the section builder serves other
designs through a layout."""

from __future__ import annotations

import re
import warnings

import matplotlib.pyplot as plt
import pytest

from bayes_alliance.report.mediation import MediationWords, mediation_section
from bayes_alliance.report.path_layouts import within_mediation_diagram


@pytest.fixture(scope="module")
def baseline_report(baseline_cli_fit, tmp_path_factory):
    """The report at 95% of the session's small fit with a baseline characteristic (the
    command line's fit.nc, shared with the mediation tests)."""
    from bayes_alliance.inference.fit import FitResult
    from bayes_alliance.report.write import write_report

    folder, _, _ = baseline_cli_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = FitResult.load(folder / "fit.nc")
        out = tmp_path_factory.mktemp("mediation") / "rep"
        path = write_report(result, out, patients=[result.data.patients[0]], ci_prob=0.95)
    return result, out, path.read_text()


def test_report_of_a_baseline_fit_has_the_mediation_section(baseline_report):
    result, out, html = baseline_report
    titles = re.findall(r"<h2>([^<]+)</h2>", html)
    assert "Mediation" in titles
    k = titles.index("Mediation")
    assert titles[k - 1] == "Trait and state effects" and titles[k + 1].startswith("Derived")
    section = html[html.index("<h2>Mediation</h2>") : html.index(f"<h2>{titles[k + 1]}")]
    # The figure: numbered in sequence with the others, with its caption, and a PNG beside it.
    figs = re.findall(r"<figure id='([^']+)'>.*?<figcaption>Figure (\d+)\. ([^<]+)<", html)
    stems = [s for s, _, _ in figs]
    assert [int(n) for _, n, _ in figs] == list(range(1, len(figs) + 1))
    _, _, caption = figs[stems.index("mediation")]
    assert "<figure id='mediation'>" in section and "data:image/png;base64," in section
    assert caption.startswith("Between-level mediation") and "95% HDI" in caption
    assert (out / "mediation.png").read_bytes()[:4] == b"\x89PNG"
    # The sentence carries the effects table's numbers at the report's level.
    eff = result.effects(0.95)
    for name, words in (
        ("indirect_effect_between", "indirect effect ab"),
        ("direct_effect_between", "direct effect c'"),
        ("total_effect_between", "total effect c' + ab"),
        ("proportion_mediated_between", "proportion mediated ab / (ab + c')"),
    ):
        r = eff.loc[name]
        want = f"{words} = {r['mean']:.2f} (95% HDI [{r['ci_low']:.2f}, {r['ci_high']:.2f}])"
        assert want.replace("'", "&#x27;") in section, want
    assert "ab / (ab + c&#x27;)" in section and "MacKinnon 2008" in section
    assert "Zilcha-Mano &amp; Fisher (2022, Table 2)" in section
    md = (out / "report.md").read_text()
    assert "## Mediation" in md and "(mediation.png)" in md
    assert "MacKinnon, D. P. (2008)" in md


def test_section_builder_takes_rows_and_a_layout():
    """Another design: the within-person layout, its own symbols, no total effect."""
    rows = {
        "a": (0.21, 0.08, 0.35),
        "b": (0.18, -0.02, 0.37),
        "cprime": (-0.09, -0.16, -0.02),
        "indirect": (0.052, 0.004, 0.11),
        "cov_ab": (0.014, -0.01, 0.04),
    }
    words = MediationWords(
        symbols={"indirect": "E[a_i b_i]", "cprime": "c'"},
        names={"indirect": "average indirect effect", "cprime": "direct effect"},
        definition="E[a_i b_i] = ab + cov(a_i, b_i) (Kenny, Korchmaros & Bolger 2003).",
    )
    section = mediation_section(
        rows,
        within_mediation_diagram,
        "90% HDI",
        what="of alliance on symptoms two sessions later, through the mediator",
        caption="Within-person mediation, lagged.",
        words=words,
        stem="within_mediation",
        title="Within-person mediation",
    )
    try:
        assert section.title == "Within-person mediation"
        assert section.paragraphs[0] == (
            "Effect of alliance on symptoms two sessions later, through the mediator: average "
            "indirect effect E[a_i b_i] = 0.05 (90% HDI [0.00, 0.11]); direct effect c' = "
            "-0.09 (90% HDI [-0.16, -0.02])."
        )
        assert section.paragraphs[-1].startswith("E[a_i b_i] = ab + cov")
        (plot,) = section.figures
        assert plot.stem == "within_mediation" and "90% HDI" in plot.caption
        texts = [t.get_text() for t in plot.figure.findobj(plt.Text)]
        assert "a = 0.21 [0.08, 0.35]" in texts
    finally:
        plt.close("all")


def test_total_effect_near_zero_warns_about_the_proportion():
    rows = {
        "a": (0.5, 0.2, 0.8),
        "b": (0.4, 0.1, 0.7),
        "cprime": (-0.2, -0.6, 0.2),
        "indirect": (0.2, 0.05, 0.4),
        "total": (0.0, -0.4, 0.4),
        "proportion": (3.0, -20.0, 25.0),
    }
    from bayes_alliance.report.path_layouts import between_roles_diagram

    section = mediation_section(
        rows, between_roles_diagram, "95% HDI", what="of g", caption="C.", provisional=True
    )
    plt.close("all")
    assert section.provisional
    assert any("proportion mediated is not interpretable" in p for p in section.paragraphs)
    assert section.paragraphs[0].startswith("Provisional")


def test_between_section_has_a_diagram_per_baseline_column():
    import pandas as pd

    from bayes_alliance.report.mediation import between_mediation_section

    rows = {
        "baseline_effect_predictor[age]": (0.3, 0.1, 0.5),
        "baseline_effect_predictor[expect ancy]": (0.9, 0.7, 1.1),
        "baseline_effect_outcome[age]": (0.1, -0.1, 0.3),
        "baseline_effect_outcome[expect ancy]": (0.2, 0.1, 0.3),
        "trait_effect_patient": (0.5, 0.4, 0.6),
        "indirect_effect_between[age]": (0.15, 0.05, 0.3),
        "indirect_effect_between[expect ancy]": (0.45, 0.3, 0.6),
    }
    table = pd.DataFrame(
        [(k, *val) for k, val in rows.items()], columns=["parameter", "mean", "ci_low", "ci_high"]
    )
    section = between_mediation_section(
        table, ("age", "expect ancy"), "94% HDI", predictor="x", outcome="y"
    )
    plt.close("all")
    assert [f.stem for f in section.figures] == ["mediation_age", "mediation_expect_ancy"]
    said = section.paragraphs
    assert said[0].startswith("Effect of age on the trait-like level of y")
    assert "indirect effect ab = 0.45 (94% HDI [0.30, 0.60])" in said[1]
    assert said[-1].startswith("The indirect effect is the product ab") and len(said) == 3
