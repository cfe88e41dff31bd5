"""Path diagrams of mediation models with the estimates on the arrows (matplotlib, Agg).

A diagram is described as data: boxes (:class:`Node`) at positions in inches, and arrows
(:class:`Path`) between them, each with a symbol, a posterior estimate and an interval.
:func:`draw_path_diagram` draws any such description: every arrow carries its text
(``"a = 0.31 [0.12, 0.50]"``, two decimals), set beside the arrow on a white ground so that
it never sits on a line; an arrow whose interval excludes 0 is solid, one whose interval
includes 0 (or has no interval) is dashed and grey. Lines of notes (the indirect effect, the
proportion mediated, what solid and dashed mean) go under the diagram.

Three layouts are ready-made:

- :func:`between_mediation_diagram`: a baseline characteristic z acting on the trait-like
  level of the outcome directly (c') and through the trait-like level of the predictor
  (a, b), from the rows of :func:`bayes_alliance.tables.effects_table` by name;
- :func:`within_mediation_diagram`: the lagged 1-1-1 design within patients, x_t -> m_(t+1)
  -> y_(t+2) with the direct path x_t -> y_(t+1), from a mapping of roles to estimates;
- :func:`two_informant_diagram`: patient-rated and therapist-rated alliance, trait-like and
  state-like, acting on symptoms, from a mapping of roles to estimates.

The last two take plain mappings ``{role: (estimate, low, high)}`` because the models that
estimate them name their parameters themselves; the role keys are listed in
:data:`WITHIN_ROLES` and :data:`TWO_INFORMANT_ROLES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # headless: diagrams are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = [
    "TWO_INFORMANT_ROLES",
    "WITHIN_ROLES",
    "Node",
    "Path",
    "Triple",
    "between_mediation_diagram",
    "between_roles_diagram",
    "between_rows",
    "diagram_extent",
    "draw_path_diagram",
    "estimate_text",
    "excludes_zero",
    "two_informant_diagram",
    "within_mediation_diagram",
]

Triple = tuple[float, float, float]
"""An estimate with the two bounds of its interval: ``(estimate, low, high)``."""

SOLID = "#08306b"
DASHED = "#7f7f7f"
FONT = 9.0
LINE = FONT / 72 * 1.45  # one line of text, in inches


@dataclass(frozen=True)
class Node:
    """A box of the diagram.

    Parameters
    ----------
    key
        The name paths refer to.
    label
        Text in the box (``"\\n"`` breaks lines).
    xy
        Centre of the box, in inches from an arbitrary origin (the axes are scaled 1:1).
    width, height
        Size of the box in inches.
    """

    key: str
    label: str
    xy: tuple[float, float]
    width: float = 1.9
    height: float = 0.75


@dataclass(frozen=True)
class Path:
    """An arrow from one node to another, with its estimate.

    Parameters
    ----------
    source, target
        Node keys.
    label
        The path's symbol (``"a"``, ``"c'"``) or a short name; the arrow's text is
        ``"<label> = <estimate> [<low>, <high>]"``.
    estimate, low, high
        Posterior estimate and interval bounds (NaN: not available; the arrow is dashed and
        its text names the symbol only).
    side
        Where the text goes, seen along the arrow: ``"left"`` or ``"right"`` of it.
    at
        Where along the visible arrow the text is anchored (0: at the source's box, 1: at
        the target's).
    offset
        Gap between the arrow and its text, in inches.
    bend
        Curvature (matplotlib's ``arc3`` ``rad``, a fraction of the distance between the
        centres): 0 is straight; a positive value bulges to the right of the arrow's
        direction, a negative one to its left.
    both_ends
        A double-headed arrow (a correlation or covariance).
    """

    source: str
    target: str
    label: str
    estimate: float
    low: float = math.nan
    high: float = math.nan
    side: Literal["left", "right"] = "left"
    at: float = 0.5
    offset: float = 0.08
    bend: float = 0.0
    both_ends: bool = False


def excludes_zero(low: float, high: float) -> bool:
    """Whether an interval lies wholly on one side of 0 (NaN bounds: no)."""
    return bool((low > 0 and high > 0) or (low < 0 and high < 0))


def _num(value: float) -> str:
    """Two decimals; a negative zero prints as 0.00."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def estimate_text(label: str, estimate: float, low: float, high: float) -> str:
    """``"a = 0.31 [0.12, 0.50]"``; without a finite estimate the label alone, without
    finite bounds no interval."""
    if not math.isfinite(estimate):
        return label
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{label} = {_num(estimate)}"
    return f"{label} = {_num(estimate)} [{_num(low)}, {_num(high)}]"


def _clip(centre: np.ndarray, towards: np.ndarray, node: Node, pad: float = 0.04) -> np.ndarray:
    """Where the straight line from a box's centre towards a point leaves the box."""
    d = towards - centre
    hw, hh = node.width / 2 + pad, node.height / 2 + pad
    scale = min(hw / abs(d[0]) if d[0] else np.inf, hh / abs(d[1]) if d[1] else np.inf)
    return centre + d * min(scale, 1.0)


def _arc_point(p0: np.ndarray, p1: np.ndarray, bend: float, t: float) -> tuple[np.ndarray, ...]:
    """A point of matplotlib's ``arc3`` curve from p0 to p1 (a quadratic Bezier whose control
    point is the chord's midpoint moved by ``bend`` times the chord, turned clockwise) and
    the curve's direction there."""
    d = p1 - p0
    control = (p0 + p1) / 2 + bend * np.array([d[1], -d[0]])
    point = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1
    tangent = 2 * (1 - t) * (control - p0) + 2 * t * (p1 - control)
    return point, tangent


def _text_anchor(normal: np.ndarray) -> tuple[str, str]:
    """Alignment that puts a text on the side of its anchor the normal points to."""
    ha = "left" if normal[0] > 0.35 else "right" if normal[0] < -0.35 else "center"
    va = "bottom" if normal[1] > 0.35 else "top" if normal[1] < -0.35 else "center"
    return ha, va


def _arrow_line(p: Path, src: Node, dst: Node) -> np.ndarray:
    """Points along the visible part of an arrow (outside both boxes), shape (k, 2)."""
    c0, c1 = np.asarray(src.xy, float), np.asarray(dst.xy, float)
    if not p.bend:
        return np.array([_clip(c0, c1, src), _clip(c1, c0, dst)])
    pts = np.array([_arc_point(c0, c1, p.bend, t)[0] for t in np.linspace(0, 1, 41)])
    inside = np.zeros(len(pts), dtype=bool)
    for n in (src, dst):
        inside |= (np.abs(pts[:, 0] - n.xy[0]) <= n.width / 2) & (
            np.abs(pts[:, 1] - n.xy[1]) <= n.height / 2
        )
    return pts[~inside]


def text_box(text: Text, ax: Axes, gap: float = 0.0) -> Bbox:
    """A text's extent in data coordinates, widened by ``gap`` (its white ground is about
    0.02 inch wider than the letters)."""
    renderer = ax.get_figure().canvas.get_renderer()  # type: ignore[union-attr]
    box = text.get_window_extent(renderer)
    lo, hi = ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y1]])
    return Bbox([lo - gap, hi + gap])


def _clear_of_line(
    text: Text, line: np.ndarray, normal: np.ndarray, ax: Axes, step: float = 0.03
) -> None:
    """Move a text along ``normal`` until it no longer touches the polyline ``line`` (a long
    text beside a shallow arrow would otherwise lie across it)."""
    ax.apply_aspect()
    track = MplPath(line)
    for _ in range(60):
        if not track.intersects_bbox(text_box(text, ax, gap=0.03), filled=False):
            return
        x, y = text.get_position()
        text.set_position((x + step * normal[0], y + step * normal[1]))


def diagram_extent(
    nodes: Sequence[Node], title: str | None, notes: Sequence[str], margin: float
) -> tuple[float, float, float, float]:
    """The drawing's limits (x0, x1, y0, y1) in inches: the boxes with a margin, a title line
    above and the notes below."""
    xs = [v for n in nodes for v in (n.xy[0] - n.width / 2, n.xy[0] + n.width / 2)]
    ys = [v for n in nodes for v in (n.xy[1] - n.height / 2, n.xy[1] + n.height / 2)]
    y0 = min(ys) - margin - len(notes) * LINE - (0.1 if notes else 0.0)
    y1 = max(ys) + margin + (1.6 * LINE if title else 0.0)
    return min(xs) - margin, max(xs) + margin, y0, y1


def draw_path_diagram(
    nodes: Sequence[Node],
    paths: Sequence[Path],
    title: str | None = None,
    ax: Axes | None = None,
    notes: Sequence[str] = (),
    margin: float = 0.35,
) -> Figure:
    """Draw boxes, arrows and each arrow's estimate with its interval.

    Parameters
    ----------
    nodes
        The boxes; positions and sizes in inches.
    paths
        The arrows. Solid where the interval excludes 0, dashed and grey otherwise.
    title
        Drawn above the diagram.
    ax
        Axes to draw into (its limits and aspect are set here); default a new figure sized
        to the diagram, one inch per unit.
    notes
        Lines under the diagram: the derived effects and what the line styles mean (the
        interval's level belongs here, e.g. ``"posterior mean [95% HDI]"``).
    margin
        Space around the boxes, in inches, for texts beside the outer arrows.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (the one ``ax`` belongs to, when given).
    """
    by_key = {n.key: n for n in nodes}
    for p in paths:
        missing = {p.source, p.target} - set(by_key)
        if missing:
            raise KeyError(f"path {p.label!r} names unknown node(s) {sorted(missing)}")
    x0, x1, y0, y1 = diagram_extent(nodes, title, notes, margin)
    if ax is None:
        fig = plt.figure(figsize=(x1 - x0, y1 - y0))
        ax = fig.add_axes((0, 0, 1, 1))
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")

    boxes = {}
    for n in nodes:
        box = FancyBboxPatch(
            (n.xy[0] - n.width / 2, n.xy[1] - n.height / 2),
            n.width,
            n.height,
            boxstyle="round,pad=0,rounding_size=0.08",
            facecolor="#f0f4f8",
            edgecolor="#333333",
            lw=1.1,
            zorder=2,
        )
        ax.add_patch(box)
        boxes[n.key] = box
        ax.text(*n.xy, n.label, ha="center", va="center", fontsize=FONT, zorder=3)

    for p in paths:
        src, dst = by_key[p.source], by_key[p.target]
        c0, c1 = np.asarray(src.xy, float), np.asarray(dst.xy, float)
        solid = excludes_zero(p.low, p.high)
        colour = SOLID if solid else DASHED
        arrow = FancyArrowPatch(
            tuple(c0),
            tuple(c1),
            patchA=boxes[p.source],
            patchB=boxes[p.target],
            shrinkA=3,
            shrinkB=3,
            arrowstyle="<|-|>" if p.both_ends else "-|>",
            mutation_scale=12,
            connectionstyle=f"arc3,rad={p.bend}",
            linestyle="-" if solid else (0, (5, 3)),
            color=colour,
            lw=1.6 if solid else 1.3,
            zorder=1,
        )
        ax.add_patch(arrow)
        # The text's anchor: on the visible part of the (possibly curved) arrow.
        line = _arrow_line(p, src, dst)
        if p.bend:
            point, tangent = _arc_point(c0, c1, p.bend, p.at)
        else:
            point, tangent = line[0] + p.at * (line[-1] - line[0]), line[-1] - line[0]
        unit = tangent / max(float(np.hypot(*tangent)), 1e-12)
        normal = np.array([-unit[1], unit[0]]) * (1 if p.side == "left" else -1)
        ha, va = _text_anchor(normal)
        anchor = point + p.offset * normal
        text = ax.text(
            float(anchor[0]),
            float(anchor[1]),
            estimate_text(p.label, p.estimate, p.low, p.high),
            ha=ha,
            va=va,
            fontsize=FONT,
            color=colour if not solid else "#111111",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            zorder=4,
        )
        _clear_of_line(text, line, normal, ax)

    if title:
        ax.text((x0 + x1) / 2, y1 - 0.2 * LINE, title, ha="center", va="top", fontsize=FONT + 1.5)
    bottom = min(n.xy[1] - n.height / 2 for n in nodes) - margin
    for k, note in enumerate(notes):
        ax.text(
            x0 + 0.1,
            bottom - k * LINE,
            note,
            ha="left",
            va="top",
            fontsize=FONT - 0.5,
            color="#333333",
        )
    return fig


# --- inputs -------------------------------------------------------------------------------


def _triples(rows: pd.DataFrame | Mapping[str, Any]) -> dict[str, Triple]:
    """``{name: (estimate, low, high)}`` from an effects table (indexed by parameter or with a
    ``parameter`` column; columns ``mean``, ``ci_low``, ``ci_high``) or from a mapping of
    such triples."""
    if isinstance(rows, pd.DataFrame):
        t = rows.set_index("parameter") if "parameter" in rows.columns else rows
        return {
            str(k): (float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]))
            for k, r in t.iterrows()
        }
    out = {}
    for k, val in rows.items():
        est, low, high = val
        out[str(k)] = (float(est), float(low), float(high))
    return out


def _pick(values: Mapping[str, Triple], role: str, required: bool = True) -> Triple:
    if role in values:
        return values[role]
    if required:
        raise KeyError(f"no estimate for {role!r}; given: {sorted(values)}")
    return (math.nan, math.nan, math.nan)


def _note(label: str, value: Triple) -> str | None:
    return estimate_text(label, *value) if math.isfinite(value[0]) else None


def _width(label: str, minimum: float = 1.9) -> float:
    """A box wide enough for its longest line (about 0.075 inch per character at 9 points)."""
    return max(minimum, 0.075 * max(len(line) for line in label.split("\n")) + 0.35)


def _box(key: str, label: str, xy: tuple[float, float], minimum: float = 1.9) -> Node:
    return Node(key, label, xy, width=_width(label, minimum))


def _key_line(ci_label: str) -> str:
    return (
        f"Posterior mean [{ci_label}]. Solid arrow: the interval excludes 0; dashed: it includes 0."
    )


# --- the between-level design (a baseline characteristic) ---------------------------------

BETWEEN_ROWS = {
    "a": "baseline_effect_predictor",
    "b": "trait_effect_patient",
    "cprime": "baseline_effect_outcome",
    "indirect": "indirect_effect_between",
    "total": "total_effect_between",
    "proportion": "proportion_mediated_between",
}
"""Roles of the between-level design and the effects table's row names that hold them."""


def baseline_columns(effects_rows: pd.DataFrame | Mapping[str, Any]) -> list[str]:
    """The baseline columns that effects table rows name (``baseline_effect_predictor[g]``)."""
    head = BETWEEN_ROWS["a"] + "["
    return sorted({k[len(head) : -1] for k in _triples(effects_rows) if k.startswith(head)})


def between_rows(
    effects_rows: pd.DataFrame | Mapping[str, Any], baseline: str | None = None
) -> dict[str, Triple]:
    """The between-level design's estimates by role (:data:`BETWEEN_ROWS`) from effects
    table rows.

    The paths a and c' are named with their baseline column (``baseline_effect_predictor[g]``);
    the derived effects carry it only when there are several columns
    (``indirect_effect_between[g]``). ``baseline`` picks the column; default the only one.
    """
    rows = _triples(effects_rows)
    if baseline is None:
        cols = baseline_columns(rows)
        if len(cols) > 1:
            raise ValueError(f"several baseline columns {cols}: name one with baseline=")
        baseline = cols[0] if cols else None
    out: dict[str, Triple] = {}
    for role, name in BETWEEN_ROWS.items():
        for candidate in (f"{name}[{baseline}]", name):
            if candidate in rows:
                out[role] = rows[candidate]
                break
    return out


def between_mediation_diagram(
    effects_rows: pd.DataFrame | Mapping[str, Any],
    ci_label: str,
    *,
    predictor: str = "alliance",
    outcome: str = "symptoms",
    baseline: str | None = None,
    title: str | None = None,
) -> Figure:
    """The baseline design: z -> trait-like predictor (a) -> trait-like outcome (b), and
    z -> trait-like outcome directly (c').

    Parameters
    ----------
    effects_rows
        Rows of :func:`bayes_alliance.tables.effects_table` (or ``FitResult.effects()``), or a
        mapping of the same names to ``(estimate, low, high)``: ``baseline_effect_predictor``
        (a), ``trait_effect_patient`` (b), ``baseline_effect_outcome`` (c'),
        ``indirect_effect_between``, ``total_effect_between`` and
        ``proportion_mediated_between`` (the last three optional, for the notes).
    ci_label
        The intervals' name, e.g. ``"95% HDI"``.
    predictor, outcome
        Names of the mediator (the predictor's trait) and of the outcome.
    baseline
        The baseline column (needed when the rows hold several).
    title
        Default: none.
    """
    roles = between_rows(effects_rows, baseline)
    z = baseline or next(iter(baseline_columns(effects_rows)), "baseline")
    return between_roles_diagram(
        roles, ci_label, predictor=predictor, outcome=outcome, baseline=z, title=title
    )


def between_roles_diagram(
    values: Mapping[str, Any],
    ci_label: str,
    *,
    predictor: str = "alliance",
    outcome: str = "symptoms",
    baseline: str = "baseline",
    title: str | None = None,
) -> Figure:
    """:func:`between_mediation_diagram` from estimates by role (the keys of
    :data:`BETWEEN_ROWS`: a, b and cprime required; indirect, total and proportion for the
    notes)."""
    unknown = set(values) - set(BETWEEN_ROWS) - {"direct"}
    if unknown:
        raise KeyError(f"unknown role(s) {sorted(unknown)}; roles: {sorted(BETWEEN_ROWS)}")
    roles = _triples(values)
    a, b, c = (_pick(roles, r) for r in ("a", "b", "cprime"))
    nodes = [
        _box("z", baseline if baseline == "baseline" else f"{baseline}\n(baseline)", (0.0, 0.0)),
        _box("m", f"{predictor}\n(trait-like)", (2.9, 1.9)),
        _box("y", f"{outcome}\n(trait-like)", (5.8, 0.0)),
    ]
    paths = [
        Path("z", "m", "a", *a, side="left", offset=0.1),
        Path("m", "y", "b", *b, side="left", offset=0.1),
        Path("z", "y", "c'", *c, side="right", offset=0.1),
    ]
    notes = [
        n
        for n in (
            _note("indirect ab", _pick(roles, "indirect", False)),
            _note("total c' + ab", _pick(roles, "total", False)),
            _note("proportion mediated ab / (ab + c')", _pick(roles, "proportion", False)),
        )
        if n
    ]
    notes = ["; ".join(notes[:2]), *notes[2:]] if notes else []
    return draw_path_diagram(nodes, paths, title, notes=[*notes, _key_line(ci_label)])


# --- the lagged 1-1-1 design within patients ----------------------------------------------

WITHIN_ROLES = {
    "a": "x_t -> m_(t+1): average a path (required)",
    "b": "m_(t+1) -> y_(t+2): average b path (required)",
    "cprime": "x_t -> y_(t+1): direct path (required)",
    "indirect": "E[a_i b_i] = ab + cov(a_i, b_i): the average indirect effect",
    "cov_ab": "cov(a_i, b_i): covariance of the patients' a and b paths",
    "proportion": "proportion mediated, indirect / (indirect + c')",
}
"""Role keys of :func:`within_mediation_diagram` and what each holds."""


def within_mediation_diagram(
    values: Mapping[str, Any],
    ci_label: str,
    *,
    predictor: str = "alliance",
    mediator: str = "mediator",
    outcome: str = "symptoms",
    title: str | None = None,
) -> Figure:
    """The lagged 1-1-1 design within patients: the predictor's state at session t acts on
    the mediator's state at t+1 (a), which acts on the outcome's state at t+2 (b); the direct
    path runs from the predictor at t to the outcome at t+1 (c').

    With patient-varying a and b the average indirect effect is E[a_i b_i] = ab + cov(a_i,
    b_i) (Kenny, Korchmaros & Bolger 2003; Bauer, Preacher & Gil 2006); the notes give it and
    its parts.

    Parameters
    ----------
    values
        ``{role: (estimate, low, high)}`` with the roles of :data:`WITHIN_ROLES` (a, b and
        cprime required).
    ci_label
        The intervals' name, e.g. ``"95% HDI"``.
    predictor, mediator, outcome
        Names of the three variables.
    title
        Default: none.
    """
    unknown = set(values) - set(WITHIN_ROLES)
    if unknown:
        raise KeyError(f"unknown role(s) {sorted(unknown)}; roles: {sorted(WITHIN_ROLES)}")
    roles = _triples(values)
    a, b, c = (_pick(roles, r) for r in ("a", "b", "cprime"))
    nodes = [
        _box("x", f"{predictor} (state)\nsession t", (0.0, 0.0)),
        _box("m", f"{mediator} (state)\nsession t+1", (2.8, 1.9)),
        _box("y1", f"{outcome} (state)\nsession t+1", (2.8, -1.4)),
        _box("y2", f"{outcome} (state)\nsession t+2", (5.6, 0.0)),
    ]
    paths = [
        Path("x", "m", "a", *a, side="left", offset=0.1),
        Path("m", "y2", "b", *b, side="left", offset=0.1),
        Path("x", "y1", "c'", *c, side="right", offset=0.1),
    ]
    indirect = _note("indirect E[a_i b_i] = ab + cov(a_i, b_i)", _pick(roles, "indirect", False))
    ab = a[0] * b[0]
    parts = [f"ab (product of the average paths) = {_num(ab)}"]
    cov = _note("cov(a_i, b_i)", _pick(roles, "cov_ab", False))
    if cov:
        parts.append(cov)
    notes = [
        n
        for n in (
            indirect,
            "; ".join(parts),
            _note("proportion mediated", _pick(roles, "proportion", False)),
        )
        if n
    ]
    return draw_path_diagram(nodes, paths, title, notes=[*notes, _key_line(ci_label)])


# --- two informants: patient- and therapist-rated alliance --------------------------------

TWO_INFORMANT_ROLES = {
    "trait_patient_rater": "patient-rated trait-like alliance -> trait-like symptoms (required)",
    "trait_therapist_rater": "therapist-rated trait-like alliance -> trait-like symptoms (required)",
    "state_patient_rater": "patient-rated alliance state at t -> symptoms state at t+1 (required)",
    "state_therapist_rater": "therapist-rated alliance state at t -> symptoms state at t+1 (required)",
    "trait_corr": "correlation of the two raters' trait-like alliance",
    "state_corr": "correlation of the two raters' alliance states",
    "trait_difference": "patient-rater minus therapist-rater trait-like effect",
    "state_difference": "patient-rater minus therapist-rater state-like effect",
}
"""Role keys of :func:`two_informant_diagram` and what each holds."""


def two_informant_diagram(
    values: Mapping[str, Any],
    ci_label: str,
    *,
    outcome: str = "symptoms",
    title: str | None = None,
) -> Figure:
    """Patient-rated and therapist-rated alliance, each trait-like (left panel, between
    patients) and state-like (right panel, session t to t+1), acting on symptoms; the two
    ratings' correlation as a double-headed arrow, the differences between raters as notes.

    Parameters
    ----------
    values
        ``{role: (estimate, low, high)}`` with the roles of :data:`TWO_INFORMANT_ROLES` (the
        four effects required).
    ci_label
        The intervals' name, e.g. ``"95% HDI"``.
    outcome
        Name of the outcome.
    title
        Default: none.
    """
    unknown = set(values) - set(TWO_INFORMANT_ROLES)
    if unknown:
        raise KeyError(f"unknown role(s) {sorted(unknown)}; roles: {sorted(TWO_INFORMANT_ROLES)}")
    roles = _triples(values)
    margin = 0.3
    panels = []
    for level, heading, kind, now, later in (
        ("trait", "Trait-like (between patients)", "(trait-like)", "", ""),
        ("state", "State-like (within patients)", "(state)", ", session t", ", session t+1"),
    ):
        p = _pick(roles, f"{level}_patient_rater")
        t = _pick(roles, f"{level}_therapist_rater")
        nodes = [
            Node("p", f"alliance, patient-rated\n{kind}{now}", (0.0, 1.7), width=2.6),
            Node("t", f"alliance, therapist-rated\n{kind}{now}", (0.0, -0.5), width=2.6),
            Node("y", f"{outcome}\n{kind}{later}", (4.9, 0.6), width=2.2),
        ]
        paths = [
            Path("p", "y", "patient", *p, side="left", offset=0.1, at=0.45),
            Path("t", "y", "therapist", *t, side="right", offset=0.1, at=0.45),
        ]
        corr = _pick(roles, f"{level}_corr", False)
        if math.isfinite(corr[0]):
            paths.append(
                Path("t", "p", "r", *corr, bend=-0.35, both_ends=True, side="left", offset=0.08)
            )
        diff = _note(
            "difference, patient - therapist rater", _pick(roles, f"{level}_difference", False)
        )
        panels.append((nodes, paths, heading, [diff] if diff else []))
    panels[-1][3].append(_key_line(ci_label))
    # Left room for the correlation's text beside its arc.
    extents = [diagram_extent(n, h, notes, margin) for n, _, h, notes in panels]
    left = 1.9
    width = max(x1 - x0 for x0, x1, _, _ in extents) + left
    heights = [y1 - y0 for _, _, y0, y1 in extents]
    top = 0.45 if title else 0.0
    fig = plt.figure(figsize=(width, sum(heights) + top))
    below = 0.0
    for (nodes, paths, heading, notes), h, (x0, x1, _, _) in zip(
        panels[::-1], heights[::-1], extents[::-1], strict=True
    ):
        total = sum(heights) + top
        ax = fig.add_axes((left / width, below / total, (x1 - x0) / width, h / total))
        draw_path_diagram(nodes, paths, heading, ax=ax, notes=notes, margin=margin)
        below += h
    if title:
        centre = (left + (extents[0][1] - extents[0][0]) / 2) / width
        fig.suptitle(
            title, x=centre, y=1 - 0.1 / (sum(heights) + top), va="top", fontsize=FONT + 2.5
        )
    return fig
