"""Path diagrams: every box and arrow text is drawn, line styles follow the intervals, the
ready-made layouts read their inputs by name and keep their numbers clear of every arrow,
box and other number."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from bayes_alliance.report.path_diagram import (
    Node,
    Path,
    draw_path_diagram,
    estimate_text,
    excludes_zero,
)
from bayes_alliance.report.path_layouts import (
    between_mediation_diagram,
    two_informant_diagram,
    within_mediation_diagram,
)

BETWEEN = {
    "baseline_effect_predictor[expectancy]": (0.31, 0.12, 0.50),
    "trait_effect_patient": (-0.45, -0.71, -0.20),
    "baseline_effect_outcome[expectancy]": (-0.12, -0.35, 0.10),
    "indirect_effect_between": (-0.14, -0.27, -0.04),
    "direct_effect_between": (-0.12, -0.35, 0.10),
    "total_effect_between": (-0.26, -0.49, -0.03),
    "proportion_mediated_between": (0.54, -0.61, 2.10),
}
WITHIN = {
    "a": (0.21, 0.08, 0.35),
    "b": (0.18, -0.02, 0.37),
    "cprime": (-0.09, -0.16, -0.02),
    "indirect": (0.052, 0.004, 0.11),
    "cov_ab": (0.014, -0.01, 0.04),
    "proportion": (-1.4, -9.0, 8.0),
}
TWO = {
    "trait_patient_rater": (-0.52, -0.80, -0.25),
    "trait_therapist_rater": (-0.10, -0.38, 0.17),
    "state_patient_rater": (-0.08, -0.14, -0.02),
    "state_therapist_rater": (-0.03, -0.09, 0.03),
    "trait_corr": (0.41, 0.22, 0.58),
    "state_corr": (0.12, 0.03, 0.21),
    "trait_difference": (-0.42, -0.80, -0.05),
    "state_difference": (-0.05, -0.13, 0.03),
}


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(plt.Text)]


def _arrows(fig: Figure) -> list[FancyArrowPatch]:
    return [a for a in fig.findobj(FancyArrowPatch)]


def _polyline(path: MplPath) -> list[MplPath]:
    """A drawn path as straight pieces (each Bezier segment sampled), in display units."""
    pieces = []
    for curve, _ in path.iter_bezier():
        pieces.append(MplPath(curve(np.linspace(0, 1, 40))))
    return pieces


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_estimate_text_and_zero():
    assert estimate_text("a", 0.314, 0.1234, 0.5) == "a = 0.31 [0.12, 0.50]"
    assert estimate_text("c'", -0.001, -0.2, 0.1) == "c' = 0.00 [-0.20, 0.10]"
    assert estimate_text("b", 0.2, math.nan, math.nan) == "b = 0.20"
    assert estimate_text("b", math.nan, math.nan, math.nan) == "b"
    assert excludes_zero(0.1, 0.3) and excludes_zero(-0.3, -0.1)
    assert not excludes_zero(-0.1, 0.3) and not excludes_zero(0.0, 0.3)
    assert not excludes_zero(math.nan, math.nan)


def test_renderer_draws_every_label_and_styles_by_interval(tmp_path):
    nodes = [
        Node("x", "predictor\nbox", (0.0, 0.0)),
        Node("m", "mediator box", (3.0, 2.0)),
        Node("y", "outcome box", (6.0, 0.0)),
    ]
    paths = [
        Path("x", "m", "a", 0.5, 0.2, 0.8),
        Path("m", "y", "b", -0.3, -0.6, 0.1),
        Path("x", "y", "c'", 0.1, math.nan, math.nan, side="right"),
    ]
    fig = draw_path_diagram(
        nodes, paths, title="A title", notes=["indirect ab = -0.15", "key line"]
    )
    texts = _texts(fig)
    for want in (
        "predictor\nbox",
        "mediator box",
        "outcome box",
        "a = 0.50 [0.20, 0.80]",
        "b = -0.30 [-0.60, 0.10]",
        "c' = 0.10",
        "A title",
        "indirect ab = -0.15",
        "key line",
    ):
        assert want in texts, (want, texts)
    arrows = _arrows(fig)
    assert len(arrows) == 3
    assert [a.get_linestyle() == "-" for a in arrows] == [True, False, False]
    assert len([b for b in fig.findobj(FancyBboxPatch) if b.get_zorder() == 2]) == 3
    out = tmp_path / "diagram.png"
    fig.savefig(out, dpi=80)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_renderer_draws_into_given_axes_and_names_unknown_nodes():
    fig, ax = plt.subplots(figsize=(4, 3))
    got = draw_path_diagram([Node("x", "X", (0, 0)), Node("y", "Y", (3, 0))], [], ax=ax)
    assert got is fig and "X" in _texts(fig)
    with pytest.raises(KeyError, match="unknown node"):
        draw_path_diagram([Node("x", "X", (0, 0))], [Path("x", "z", "a", 1.0, 0.5, 1.5)])


def test_between_diagram_from_effects_rows():
    # The effects table's layout: a parameter column with mean, ci_low, ci_high.
    table = pd.DataFrame(
        [(k, *val) for k, val in BETWEEN.items()],
        columns=["parameter", "mean", "ci_low", "ci_high"],
    )
    fig = between_mediation_diagram(table, "95% HDI", predictor="WAI", outcome="OQ-45")
    texts = "\n".join(_texts(fig))
    for want in (
        "expectancy\n(baseline)",
        "WAI\n(trait-like)",
        "OQ-45\n(trait-like)",
        "a = 0.31 [0.12, 0.50]",
        "b = -0.45 [-0.71, -0.20]",
        "c' = -0.12 [-0.35, 0.10]",
        "indirect ab = -0.14 [-0.27, -0.04]",
        "total c' + ab = -0.26 [-0.49, -0.03]",
        "proportion mediated ab / (ab + c') = 0.54 [-0.61, 2.10]",
        "[95% HDI]",
    ):
        assert want in texts, want
    assert [a.get_linestyle() == "-" for a in _arrows(fig)] == [True, True, False]


def test_between_diagram_with_several_baseline_columns():
    rows = {
        "baseline_effect_predictor[g]": (0.3, 0.1, 0.5),
        "baseline_effect_predictor[h]": (0.9, 0.7, 1.1),
        "baseline_effect_outcome[g]": (0.1, -0.1, 0.3),
        "baseline_effect_outcome[h]": (0.2, 0.1, 0.3),
        "trait_effect_patient": (0.5, 0.4, 0.6),
        "indirect_effect_between[h]": (0.45, 0.3, 0.6),
    }
    with pytest.raises(ValueError, match="several baseline columns"):
        between_mediation_diagram(rows, "94% HDI")
    texts = _texts(between_mediation_diagram(rows, "94% HDI", baseline="h"))
    assert "a = 0.90 [0.70, 1.10]" in texts and "h\n(baseline)" in texts
    assert any(t.startswith("indirect ab = 0.45") for t in texts)
    with pytest.raises(KeyError, match="no estimate for 'b'"):
        between_mediation_diagram({"baseline_effect_predictor[g]": (1, 0, 2)}, "94% HDI")


def test_within_and_two_informant_diagrams_take_roles():
    texts = "\n".join(_texts(within_mediation_diagram(WITHIN, "95% HDI", mediator="affect")))
    for want in (
        "affect (state)\nsession t+1",
        "symptoms (state)\nsession t+2",
        "a = 0.21 [0.08, 0.35]",
        "c' = -0.09 [-0.16, -0.02]",
        "E[a_i b_i] = ab + cov(a_i, b_i) = 0.05 [0.00, 0.11]",
        "cov(a_i, b_i) = 0.01 [-0.01, 0.04]",
        "ab (product of the average paths) = 0.04",
    ):
        assert want in texts, want
    with pytest.raises(KeyError, match="unknown role"):
        within_mediation_diagram({**WITHIN, "ab_path": (1, 0, 2)}, "95% HDI")
    with pytest.raises(KeyError, match="cprime"):
        within_mediation_diagram({"a": (1, 0, 2), "b": (1, 0, 2)}, "95% HDI")
    fig = two_informant_diagram(TWO, "90% HDI")
    texts = "\n".join(_texts(fig))
    for want in (
        "patient = -0.52 [-0.80, -0.25]",
        "therapist = -0.03 [-0.09, 0.03]",
        "r = 0.41 [0.22, 0.58]",
        "r = 0.12 [0.03, 0.21]",
        "difference, patient - therapist rater = -0.42 [-0.80, -0.05]",
        "[90% HDI]",
    ):
        assert want in texts, want
    # Without correlations the arrows are the four effects.
    plain = {k: val for k, val in TWO.items() if "corr" not in k}
    assert len(_arrows(two_informant_diagram(plain, "90% HDI"))) == 4


@pytest.mark.parametrize(
    "draw",
    [
        lambda: between_mediation_diagram(BETWEEN, "95% HDI", title="Between"),
        lambda: within_mediation_diagram(WITHIN, "95% HDI", mediator="emotion regulation"),
        lambda: two_informant_diagram(TWO, "95% HDI", title="Two informants"),
        # Long numbers: wider texts must still clear the arrows.
        lambda: between_mediation_diagram({k: (-12.345, -100.0, 55.5) for k in BETWEEN}, "95% HDI"),
        lambda: between_mediation_diagram(
            BETWEEN, "95% HDI", predictor="Working Alliance Inventory", outcome="OQ-45 total"
        ),
    ],
    ids=["between", "within", "two_informant", "between_long_numbers", "long_names"],
)
def test_numbers_clear_arrows_boxes_and_each_other(draw):
    fig = draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    numbers = [t for t in fig.findobj(plt.Text) if t.get_bbox_patch() is not None]
    assert numbers
    boxes = [b for b in fig.findobj(FancyBboxPatch) if b.get_zorder() == 2]
    arrows = [_polyline(a.get_transform().transform_path(a.get_path())) for a in _arrows(fig)]
    extents = [t.get_window_extent(renderer) for t in numbers]
    for k, ext in enumerate(extents):
        label = numbers[k].get_text()
        for pieces in arrows:
            assert not any(p.intersects_bbox(ext, filled=False) for p in pieces), label
        for box in boxes:
            assert not ext.overlaps(box.get_window_extent(renderer)), label
        for j, other in enumerate(extents):
            assert j == k or not ext.overlaps(other), (label, numbers[j].get_text())
    # Every text lies inside the figure (nothing cut off at the edge).
    fig_box = fig.bbox
    for t in fig.findobj(plt.Text):
        if t.get_text():
            e = t.get_window_extent(renderer)
            assert fig_box.x0 - 1 <= e.x0 and e.x1 <= fig_box.x1 + 1, t.get_text()
            assert fig_box.y0 - 1 <= e.y0 and e.y1 <= fig_box.y1 + 1, t.get_text()
    assert np.isfinite([e.x0 for e in extents]).all()
