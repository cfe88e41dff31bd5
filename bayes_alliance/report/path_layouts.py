"""Ready-made path diagram layouts of the mediation designs, drawn by
:func:`bayes_alliance.report.path_diagram.draw_path_diagram`.

- :func:`between_mediation_diagram`: a baseline characteristic z acting on the trait-like
  level of the outcome directly (c') and through the trait-like level of the predictor
  (a, b), from the rows of :func:`bayes_alliance.report.tables.effects_table` by name
  (:func:`between_roles_diagram` from estimates by role, :data:`BETWEEN_ROWS`);
- :func:`within_mediation_diagram`: the lagged 1-1-1 design within patients, x_t -> m_(t+1)
  -> y_(t+2) with the direct path x_t -> y_(t+1), from a mapping of roles to estimates;
- :func:`two_informant_diagram`: patient-rated and therapist-rated alliance, trait-like and
  state-like, acting on symptoms, from a mapping of roles to estimates;
- :func:`informant_mediation_diagram`: both ratings' lagged 1-1-1 mediation through one
  mediator in one model (each rating's a path, the shared b path, each rating's c').

The last three take plain mappings ``{role: (estimate, low, high)}`` because the models that
estimate them name their parameters themselves; the role keys are listed in
:data:`WITHIN_ROLES`, :data:`TWO_INFORMANT_ROLES` and :data:`INFORMANT_MEDIATION_ROLES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: diagrams are written to files, never shown

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from bayes_alliance.report.path_diagram import (
    FONT,
    Node,
    Path,
    diagram_extent,
    draw_path_diagram,
    estimate_text,
    number_text,
)

__all__ = [
    "BETWEEN_ROWS",
    "INFORMANT_MEDIATION_ROLES",
    "TWO_INFORMANT_ROLES",
    "WITHIN_ROLES",
    "Triple",
    "baseline_columns",
    "between_mediation_diagram",
    "between_roles_diagram",
    "between_rows",
    "informant_mediation_diagram",
    "two_informant_diagram",
    "within_mediation_diagram",
]

Triple = tuple[float, float, float]
"""An estimate with the two bounds of its interval: ``(estimate, low, high)``."""

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


def _role_triples(values: Mapping[str, Any], known: Mapping[str, str]) -> dict[str, Triple]:
    """A diagram's ``{role: (estimate, low, high)}``, every role one of ``known``'s keys."""
    unknown = set(values) - set(known)
    if unknown:
        raise KeyError(f"unknown role(s) {sorted(unknown)}; roles: {sorted(known)}")
    return _triples(values)


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
        Rows of :func:`bayes_alliance.report.tables.effects_table` (or ``FitResult.effects()``), or a
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
    roles = _role_triples(values, WITHIN_ROLES)
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
    parts = [f"ab (product of the average paths) = {number_text(ab)}"]
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
    roles = _role_triples(values, TWO_INFORMANT_ROLES)
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


# --- a mediator with two informants ---------------------------------------------------------

INFORMANT_MEDIATION_ROLES = {
    "a": "x_t -> m_(t+1): first rating's average a path (required)",
    "a_second": "x2_t -> m_(t+1): second rating's average a path (required)",
    "b": "m_(t+1) -> y_(t+2): average b path (required)",
    "cprime": "x_t -> y_(t+1): first rating's direct path (required)",
    "cprime_second": "x2_t -> y_(t+1): second rating's direct path (required)",
    "indirect": "E[a_i b_i]: first rating's average indirect effect",
    "indirect_second": "E[a2_i b_i]: second rating's average indirect effect",
    "indirect_difference": "first minus second rating's indirect effect",
    "proportion": "first rating's proportion mediated",
    "proportion_second": "second rating's proportion mediated",
    "state_corr": "correlation of the two ratings' innovations",
}
"""Role keys of :func:`informant_mediation_diagram` and what each holds."""


def informant_mediation_diagram(
    values: Mapping[str, Any],
    ci_label: str,
    *,
    predictor: str = "alliance (patient)",
    second: str = "alliance (therapist)",
    mediator: str = "mediator",
    outcome: str = "symptoms",
    title: str | None = None,
) -> Figure:
    """Two ratings of the predictor and one mediator in one model: each rating's state at
    session t acts on the mediator's state at t+1 (a, a2), which acts on the outcome's state
    at t+2 (b, shared); each rating's direct path runs to the outcome at t+1 (c', c'2). The
    notes give each rating's average indirect effect E[a_ji b_i] = a_j b + cov(a_ji, b_i), their
    difference and the proportions mediated.

    Parameters
    ----------
    values
        ``{role: (estimate, low, high)}`` with the roles of :data:`INFORMANT_MEDIATION_ROLES`
        (the five paths required).
    ci_label
        The intervals' name, e.g. ``"95% HDI"``.
    predictor, second, mediator, outcome
        Names of the first and second rating, the mediator and the outcome.
    title
        Default: none.
    """
    roles = _role_triples(values, INFORMANT_MEDIATION_ROLES)
    a, a2, b, c, c2 = (_pick(roles, r) for r in ("a", "a_second", "b", "cprime", "cprime_second"))
    nodes = [
        _box("x", f"{predictor} (state)\nsession t", (0.0, 1.2)),
        _box("x2", f"{second} (state)\nsession t", (0.0, -1.2)),
        _box("m", f"{mediator} (state)\nsession t+1", (3.4, 2.7)),
        _box("y1", f"{outcome} (state)\nsession t+1", (3.4, -2.7)),
        _box("y2", f"{outcome} (state)\nsession t+2", (6.8, 0.0)),
    ]
    # The a and c' arrows cross between the columns: their texts sit near the targets.
    paths = [
        Path("x", "m", "a", *a, side="left", offset=0.1, at=0.6),
        Path("x2", "m", "a2", *a2, side="right", offset=0.1, at=0.8),
        Path("m", "y2", "b", *b, side="left", offset=0.1),
        Path("x", "y1", "c'", *c, side="left", offset=0.1, at=0.8),
        Path("x2", "y1", "c'2", *c2, side="right", offset=0.1, at=0.6),
    ]
    corr = _pick(roles, "state_corr", False)
    if math.isfinite(corr[0]):
        paths.append(
            Path("x2", "x", "r", *corr, bend=0.45, both_ends=True, side="right", offset=0.08)
        )
    notes = [
        n
        for n in (
            _note(f"indirect of {predictor} E[a_i b_i]", _pick(roles, "indirect", False)),
            _note(f"indirect of {second} E[a2_i b_i]", _pick(roles, "indirect_second", False)),
            _note("difference of the indirect effects", _pick(roles, "indirect_difference", False)),
            _note(f"proportion mediated, {predictor}", _pick(roles, "proportion", False)),
            _note(f"proportion mediated, {second}", _pick(roles, "proportion_second", False)),
        )
        if n
    ]
    notes = ["; ".join(notes[i : i + 2]) for i in range(0, len(notes), 2)]
    return draw_path_diagram(nodes, paths, title, notes=[*notes, _key_line(ci_label)])
