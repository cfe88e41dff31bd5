"""Labelled tables and their manuscript renderings, on hand-built inputs (no fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_alliance.kernels import r2 as r2_kernel
from bayes_alliance.report.tables import (
    interval_name,
    label_effects,
    label_r2,
    manuscript,
    number,
    r2_components_present,
    to_latex,
    to_markdown,
)
from bayes_alliance.spec.model_spec import ModelSpec

STATS = ["mean", "sd", "ci_low", "ci_high", "ess_bulk", "ess_tail", "r_hat"]


def _summary(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """Name -> (mean, low, high) as a summary table."""
    return pd.DataFrame(
        {n: (m, 0.1, lo, hi, 800.0, 700.0, 1.001) for n, (m, lo, hi) in rows.items()},
        index=STATS,
    ).T


def _r2_grid(three_level: bool, time: bool = False) -> pd.DataFrame:
    """Every (equation, denominator, component) the R-squared kernel produces, as r2() does."""
    comps = r2_kernel.THREE_LEVEL_COMPONENTS if three_level else r2_kernel.TWO_LEVEL_COMPONENTS
    fn = r2_kernel.three_level_r2 if three_level else r2_kernel.two_level_r2
    values = {c: np.array(1.0) for c in comps}
    if time:
        values[r2_kernel.TIME] = np.array(1.0)
    rows = [
        {
            "equation": eq,
            "denominator": d,
            "component": c,
            "mean": 0.2,
            "ci_low": 0.1,
            "ci_high": 0.3,
        }
        for eq in ("outcome", "predictor")
        for d, c in fn(values)
    ]
    rows.append(
        {
            "equation": "outcome",
            "denominator": "model",
            "component": "bayes_r2",
            "mean": 0.7,
            "ci_low": 0.6,
            "ci_high": 0.8,
        }
    )
    return pd.DataFrame(rows)


def test_interval_name_carries_the_level():
    assert interval_name(0.95) == "95% HDI"
    assert interval_name(0.975, "eti") == "97.5% interval"
    assert interval_name(0.9) == "90% HDI"
    with pytest.raises(ValueError, match="ci_prob"):
        interval_name(95)


def test_numbers_as_a_manuscript_prints_them():
    assert number(-0.2349) == "−0.23"
    assert number(0.4649, leading_zero=False) == ".46"
    assert number(-0.001) == "0.00"  # no sign on a value that rounds to zero
    assert number(1.0, leading_zero=False) == "1.00"
    assert number(float("nan")) == ""


def test_effects_are_labelled_grouped_and_explained():
    summary = _summary(
        {
            "trait_effect_patient": (-0.4, -0.6, -0.2),
            "state_effect": (-0.23, -0.29, -0.16),
            "intercept_outcome": (1.8, 1.7, 1.9),  # not an effect: stays in summary.csv only
        }
    )
    derived = _summary(
        {
            "icc_outcome_patient": (0.59, 0.48, 0.69),
            "standardised_state_effect": (-0.24, -0.30, -0.17),
            "long_run_state_effect": (-0.5, -0.66, -0.35),
        }
    )
    t = label_effects(summary, derived, predictor="alliance", outcome="symptoms", ci_prob=0.95)
    assert list(t["parameter"]) == [
        "state_effect",
        "trait_effect_patient",
        "standardised_state_effect",
        "long_run_state_effect",
        "icc_outcome_patient",
    ]
    assert (t["interval"] == "95% HDI").all()
    labels = dict(zip(t["parameter"], t["label"], strict=True))
    assert labels["state_effect"] == "state-like effect: alliance (t-1) → symptoms (t)"
    assert labels["icc_outcome_patient"] == "ICC of symptoms: patient share"
    notes = dict(zip(t["parameter"], t["note"], strict=True))
    assert "within-person SD" in notes["standardised_state_effect"]
    assert "sustained" in notes["long_run_state_effect"]
    assert all(notes.values())
    assert "95% HDIs" in t.attrs["note"]


def test_r2_rows_only_for_components_the_model_has():
    plain = label_r2(
        _r2_grid(True), ModelSpec(), predictor="alliance", outcome="symptoms", ci_prob=0.95
    )
    rows = set(zip(plain["equation"], plain["denominator"], plain["component"], strict=True))
    # No random slopes: no slope components and no sums that repeat f.
    assert not {c for _, _, c in rows} & {"v12", "v13", "v23", "fv", "f1v"}
    assert ("outcome", "total", "f1") in rows and ("outcome", "level3", "f3") in rows
    # The predictor equation has no trait effects, and its level-2 / level-3 shares are 1.
    assert not [r for r in rows if r[0] == "predictor" and r[2] in ("f2", "f3", "f")]
    assert not [r for r in rows if r[0] == "predictor" and r[1] in ("level2", "level3")]
    assert ("outcome", "model", "bayes_r2") in rows
    labels = dict(zip(plain["component"], plain["label"], strict=True))
    assert labels["bayes_r2"] == "whole-model Bayesian R-squared"
    assert (plain["interval"] == "95% interval").all()
    assert set(plain.loc[plain.equation == "outcome", "share_of"]) >= {
        "total variance of symptoms",
        "session-level (level 1) variance of symptoms",
    }

    slopes = label_r2(
        _r2_grid(True),
        ModelSpec(random_slopes=("patient",)),
        predictor="x",
        outcome="y",
        ci_prob=0.9,
    )
    comps = set(slopes.loc[slopes.equation == "outcome", "component"])
    assert {"v12", "fv", "f1v"} & comps == {"v12", "fv"}  # f1v is a two-level measure
    assert "v13" not in comps

    two = label_r2(
        _r2_grid(False, time=True),
        ModelSpec(therapist_level=False, trend=True),
        predictor="x",
        outcome="y",
        ci_prob=0.9,
    )
    assert "time" in set(two.component) and "v" not in set(two.component)
    assert (
        "including session means and trends"
        in two.loc[two.denominator == "total", "share_of"].iloc[0]
    )


@pytest.mark.parametrize(
    ("spec", "outcome_has", "predictor_has"),
    [
        (ModelSpec(equations="outcome"), {"f1", "f2", "f3"}, set()),
        (ModelSpec(dynamics="none", same_session="predictor_to_outcome"), {"f1"}, set()),
        (ModelSpec(dynamics="none", same_session="outcome_to_predictor"), set(), {"f1"}),
        (ModelSpec(random_slopes=("therapist",)), {"f1", "v13"}, {"f1"}),
    ],
)
def test_components_present_follow_the_spec(spec, outcome_has, predictor_has):
    present = r2_components_present(spec)
    fixed = {"f1", "f2", "f3", "v12", "v13"}
    assert present["outcome"] & fixed == outcome_has | (
        {"f2", "f3"} if spec.therapist_level else {"f2"}
    )
    assert present["predictor"] & fixed == predictor_has


def test_markdown_table_with_groups_and_note():
    t = pd.DataFrame(
        {
            "parameter": ["state_effect", "icc_outcome_patient"],
            "group": ["State-like paths", "ICCs"],
            "label": ["a | b", "ICC"],
            "mean": [-0.234, 0.5912],
            "ci_low": [-0.301, 0.48],
            "ci_high": [-0.162, 0.69],
            "interval": ["95% HDI", "95% HDI"],
        }
    )
    t.attrs["note"] = "Posterior means."
    md = to_markdown(t, "Table 1. Effects")
    assert md.splitlines()[:4] == [
        "**Table 1. Effects**",
        "",
        "| Effect | Estimate | 95% HDI |",
        "|:---|---:|---:|",
    ]
    assert "| *State-like paths* | | |" in md
    assert "| a \\| b | −0.23 | [−0.30, −0.16] |" in md
    assert "| ICC | .59 | [.48, .69] |" in md  # a share: no leading zero
    assert md.rstrip().endswith("*Note.* Posterior means.")


def test_latex_table_is_apa_style():
    t = pd.DataFrame(
        {
            "group": ["Within & between", "Within & between"],
            "label": ["state_effect 100%", "trait → y"],
            "mean": [-0.2351, 1.5],
            "ci_low": [-0.3, 1.0],
            "ci_high": [-0.1, 2.0],
            "interval": ["95% HDI", "95% HDI"],
        }
    )
    t.attrs["note"] = "Means; 95% HDIs."
    tex = to_latex(t, "Effects of alliance", "tab:effects")
    lines = tex.splitlines()
    assert "\\begin{tabular}{lrr}" in lines
    assert lines.index("\\toprule") < lines.index("\\midrule") < lines.index("\\bottomrule")
    assert "Effect & Estimate & 95\\% HDI \\\\" in lines
    assert "\\multicolumn{3}{l}{\\textit{Within \\& between}} \\\\" in lines
    assert "\\quad state\\_effect 100\\% & $-$0.24 & [$-$0.30, $-$0.10] \\\\" in lines
    assert "\\quad trait $\\rightarrow$ y & 1.50 & [1.00, 2.00] \\\\" in lines
    assert "\\caption{Effects of alliance}" in lines and "\\label{tab:effects}" in lines
    assert any(
        line.startswith("\\parbox") and "\\textit{Note.} Means; 95\\% HDIs." in line
        for line in lines
    )
    assert "|" not in tex.split("\\begin{tabular}")[1].split("}")[0]  # no vertical rules


def test_plain_frames_render_as_they_are():
    df = pd.DataFrame(
        {"estimate": [0.123456, -2.0], "n": [3, 4]}, index=pd.Index(["a", "b"], name="term")
    )
    md = to_markdown(df, decimals=3)
    assert md.splitlines()[0] == "| term | estimate | n |"
    assert "| a | 0.123 | 3 |" in md and "| b | −2.000 | 4 |" in md
    tex = to_latex(df)
    assert "a & 0.12 & 3 \\\\" in tex and "\\caption" not in tex


def test_manuscript_layout_of_r2():
    t = label_r2(_r2_grid(True), ModelSpec(), predictor="x", outcome="y", ci_prob=0.95)
    m = manuscript(t)
    assert list(m.columns) == ["group", "Component", "R²", "95% interval"]
    assert m["R²"].iloc[0] == ".20" and m["95% interval"].iloc[0] == "[.10, .30]"
    assert m["group"].iloc[0] == "Outcome: share of the total variance of y"
    assert m.attrs["note"].startswith("Shares of variance explained")
