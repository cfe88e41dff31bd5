"""The report's mediation section: a path diagram with the estimates on its arrows and the
effects in a sentence.

:func:`mediation_section` serves any mediation design: it takes the design's estimates by
role (``indirect``, ``cprime``, ``total``, ``proportion`` and whatever its diagram needs) and
a layout, a function that draws them (those of :mod:`bayes_alliance.report.path_layouts`, or a new
one). :func:`between_mediation_section` is the between-level design of a fit with a baseline
characteristic, one diagram per baseline column. :func:`informant_mediation_table` sets a
mechanism fit's within-level mediation of two ratings through one mediator side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from bayes_alliance.core import vocab as v
from bayes_alliance.report.path_layouts import Triple, between_roles_diagram, between_rows
from bayes_alliance.report.render import Plot, ReportSection
from bayes_alliance.report.words import PROVISIONAL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BETWEEN_WORDS",
    "INFORMANT_MEDIATION_ROWS",
    "MediationWords",
    "between_mediation_section",
    "informant_mediation_table",
    "mediation_section",
]

DiagramDrawer = Callable[[Mapping[str, Triple], str], "Figure"]
"""Draws a design's estimates by role, given the intervals' name (e.g. ``"95% HDI"``)."""


@dataclass(frozen=True)
class MediationWords:
    """How a design's effects are named in the sentence: the symbol of each role."""

    symbols: Mapping[str, str] = field(
        default_factory=lambda: {
            "indirect": "ab",
            "cprime": "c'",
            "total": "c' + ab",
            "proportion": "ab / (ab + c')",
        }
    )
    names: Mapping[str, str] = field(
        default_factory=lambda: {
            "indirect": "indirect effect",
            "cprime": "direct effect",
            "total": "total effect",
            "proportion": "proportion mediated",
        }
    )
    definition: str = (
        "The indirect effect is the product ab of the a and b paths (MacKinnon 2008), computed "
        "per posterior draw, so its interval needs no normal approximation of the product. The "
        "proportion mediated, ab / (ab + c'), is the share of the total effect carried by the "
        'mediator: the "mediation/direct" proportion that Zilcha-Mano & Fisher (2022, Table 2) '
        "report. It is unstable when the total effect is near 0 (its draws then run to large "
        "values of both signs)."
    )


BETWEEN_WORDS = MediationWords()


def _with_interval(value: Triple, ci_label: str) -> str:
    est, low, high = value
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{est:.2f}"
    return f"{est:.2f} ({ci_label} [{low:.2f}, {high:.2f}])"


def mediation_section(
    rows: Mapping[str, Triple],
    layout: DiagramDrawer,
    ci_label: str,
    *,
    what: str,
    caption: str,
    words: MediationWords = BETWEEN_WORDS,
    stem: str = "mediation",
    title: str = "Mediation",
    provisional: bool = False,
) -> ReportSection:
    """A report section for one mediation design: a sentence with the effects, the definition
    of the proportion mediated, and the path diagram as a numbered figure.

    Parameters
    ----------
    rows
        The design's estimates ``{role: (estimate, low, high)}``: ``indirect``, ``cprime``
        (the direct effect), ``total`` and ``proportion`` go into the sentence (those present,
        in that order), all of them to ``layout``.
    layout
        Draws the diagram from ``rows`` and ``ci_label``.
    ci_label
        The intervals' name, e.g. ``"95% HDI"``.
    what
        The effect in words, completing "Effect ...", e.g. ``"of g on the trait-like level
        of y, through the trait-like level of x"``.
    caption
        The figure's caption (the line styles' meaning is added).
    words
        Symbols, names and the definition paragraph of the design.
    stem
        The figure's file stem.
    title
        The section's title.
    provisional
        Mark the sentences as not to be reported (failed convergence check).
    """
    parts = [
        f"{words.names[role]} {words.symbols[role]} = {_with_interval(rows[role], ci_label)}"
        for role in ("indirect", "cprime", "total", "proportion")
        if role in rows and math.isfinite(rows[role][0])
    ]
    said = [f"Effect {what}: " + "; ".join(parts) + "."] if parts else []
    total = rows.get("total")
    if total is not None and "proportion" in rows and not (total[1] > 0 or total[2] < 0):
        said.append(
            f"The {ci_label} of the total effect includes 0, so the proportion mediated is "
            "not interpretable here: read the indirect and total effects instead."
        )
    if provisional:
        said = [PROVISIONAL + s for s in said]
    return ReportSection(
        title,
        [*said, words.definition],
        figures=[
            Plot(
                stem,
                layout(rows, ci_label),
                f"{caption} Posterior means with {ci_label}s; solid arrows: the interval "
                "excludes 0, dashed: it includes 0.",
            )
        ],
        provisional=provisional,
    )


def between_mediation_section(
    effects: pd.DataFrame,
    baseline: tuple[str, ...],
    ci_label: str,
    *,
    predictor: str,
    outcome: str,
    provisional: bool = False,
    split: bool = False,
) -> ReportSection:
    """The between-level mediation of a fit with a baseline: one sentence and one path
    diagram per baseline column, from the effects table at the report's interval level
    (:func:`bayes_alliance.report.tables.effects_table`).

    ``split``: a patient-level baseline of three-level data split at the therapists
    (:meth:`~bayes_alliance.spec.model_spec.ModelSpec.splits_baseline`); each column then gets
    two: its within-therapist part (a_W, b = the patient-level trait-like effect, c'_W) and
    its between-therapist part (a_B, b_T, c'_B: the therapists' means)."""
    parts: list[ReportSection] = []
    taken: set[str] = set()
    for col in baseline:
        stem = "mediation"
        if len(baseline) > 1:
            stem = "mediation_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", col).strip("._") or "g")
            while stem in taken:
                stem += "_"
        taken.add(stem)
        draw = partial(between_roles_diagram, predictor=predictor, outcome=outcome, baseline=col)
        within = " within therapists" if split else ""
        parts.append(
            mediation_section(
                between_rows(effects, col),
                draw,
                ci_label,
                what=(
                    f"of {col}{within} on the trait-like level of {outcome}, through the "
                    f"trait-like level of {predictor}"
                ),
                caption=(
                    f"Between-level mediation{within}: {col}"
                    + (
                        " (the patient's difference from their therapist's patients' mean)"
                        if split
                        else ""
                    )
                    + f" acts on the trait-like (latent patient "
                    f"mean) level of {predictor} (a), which acts on that of {outcome} (b, the "
                    f"trait-like effect between patients); c' is the direct path from {col} "
                    f"to the trait-like level of {outcome}."
                ),
                stem=stem,
                provisional=provisional,
            )
        )
        if split:
            parts.append(
                mediation_section(
                    between_rows(_between_therapist_rows(effects), col),
                    draw,
                    ci_label,
                    what=(
                        f"of {col} between therapists (their patients' mean) on the "
                        f"therapists' mean {outcome}, through their mean {predictor}"
                    ),
                    caption=(
                        f"Between-therapist mediation: the therapists' mean {col} acts on "
                        f"their mean {predictor} (a_B), which acts on their mean {outcome} "
                        f"(b_T, the trait-like effect between therapists); c'_B is the direct "
                        f"path from the mean {col} to the therapists' mean {outcome}."
                    ),
                    stem=stem + "_between_therapists",
                    provisional=provisional,
                )
            )
    first = parts[0]
    return ReportSection(
        first.title,
        [p for s in parts for p in s.paragraphs if p != BETWEEN_WORDS.definition]
        + [BETWEEN_WORDS.definition],
        figures=[f for s in parts for f in s.figures],
        provisional=provisional,
    )


# A split baseline's between-therapist rows under the names of the patient-level design
# (:data:`bayes_alliance.report.path_layouts.BETWEEN_ROWS`), so that one diagram draws both.
_AS_WITHIN = {
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: v.BASELINE_EFFECT_PREDICTOR,
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: v.BASELINE_EFFECT_OUTCOME,
    v.TRAIT_EFFECT_THERAPIST: v.TRAIT_EFFECT_PATIENT,
    "indirect_effect_between_therapist": "indirect_effect_between",
    "total_effect_between_therapist": "total_effect_between",
    "proportion_mediated_between_therapist": "proportion_mediated_between",
}


def _between_therapist_rows(effects: pd.DataFrame) -> dict[str, Triple]:
    """The between-therapist part's estimates of a split baseline, renamed as the patient-level
    design's rows (entries ``name[column]`` keep their column)."""
    t = effects.set_index("parameter") if "parameter" in effects.columns else effects
    out: dict[str, Triple] = {}
    for key, r in t.iterrows():
        name = str(key)
        base, bracket, rest = name.partition("[")
        if base in _AS_WITHIN:
            out[_AS_WITHIN[base] + bracket + rest] = (
                float(r["mean"]),
                float(r["ci_low"]),
                float(r["ci_high"]),
            )
    return out


INFORMANT_MEDIATION_ROWS: tuple[tuple[str, str, str, str | None], ...] = (
    ("a path (to the mediator at t+1)", "effect_on_mediator", "effect_on_mediator_second",
     "effect_on_mediator_difference"),
    ("b path (mediator to outcome, shared)", "mediator_effect", "mediator_effect", None),
    ("c' (lag-1 direct path)", "direct_path_within", "direct_path_within_second",
     "state_effect_difference"),
    ("cov(a_i, b_i) between patients", "cov_random_paths", "cov_random_paths_second", None),
    ("indirect effect E[a_i b_i]", "indirect_effect_within", "indirect_effect_within_second",
     "indirect_effect_within_difference"),
    ("direct effect (t to t+2)", "direct_effect_within", "direct_effect_within_second",
     "direct_effect_within_difference"),
    ("total effect (t to t+2)", "total_effect_within", "total_effect_within_second",
     "total_effect_within_difference"),
    ("proportion mediated", "proportion_mediated_within", "proportion_mediated_within_second",
     None),
)  # fmt: skip
"""Rows of :func:`informant_mediation_table`: the label and the effects rows of the first
rating, the second and their difference (None: no difference is reported; the b path is one
path of both)."""


def informant_mediation_table(
    effects: pd.DataFrame, first: str, second: str, ci_label: str
) -> pd.DataFrame:
    """The mediation of two ratings through one mediator side by side: one row per path or
    effect (:data:`INFORMANT_MEDIATION_ROWS`), one column per rating and one for their
    difference (first minus second, per draw), each cell ``"estimate [low, high]"`` (empty
    where the fit has no such row).

    Parameters
    ----------
    effects
        A mechanism fit's effects table (``parameter``, ``mean``, ``ci_low``, ``ci_high``).
    first, second
        The two ratings' column names (the table's column headers).
    ci_label
        The intervals' name, for the index's header.
    """
    t = effects.set_index("parameter") if "parameter" in effects.columns else effects

    def cell(name: str | None) -> str:
        if name is None or name not in t.index:
            return ""
        est, low, high = t.loc[name, ["mean", "ci_low", "ci_high"]].to_numpy(dtype=float)
        return f"{est:.3f} [{low:.3f}, {high:.3f}]"

    return pd.DataFrame(
        [[cell(a), cell(b), cell(d)] for _, a, b, d in INFORMANT_MEDIATION_ROWS],
        index=pd.Index([r[0] for r in INFORMANT_MEDIATION_ROWS], name=f"mean [{ci_label}]"),
        columns=[first, second, f"{first} minus {second}"],
    )
