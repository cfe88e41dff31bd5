"""Labelled result tables and their manuscript versions (Markdown and LaTeX).

:func:`effects_table` and :func:`r2_table` turn a fit into tidy tables that read on their own:
every row has a plain-language ``label``, the interval level is named in an ``interval``
column, the effects carry a ``note`` that says in words what a standardised or long-run effect
is, and R-squared rows for components the model does not have are left out. The CSV files of
a fit and of a report are these tables.

:func:`manuscript` lays such a table out as a journal table (APA style: two decimals, the
interval in brackets, group headings, a note), and :func:`to_markdown` and :func:`to_latex`
render any table (the LaTeX needs ``\\usepackage{booktabs}``). Both renderers belong to this
package: no tabulate, and no jinja2 (which pandas' ``to_latex`` needs).

The labelling functions (:func:`label_effects`, :func:`label_r2`) take plain data frames and
a :class:`~bayes_alliance.spec.model_spec.ModelSpec`, so they are tested without a fit. The words are in
:mod:`bayes_alliance.report.labels`, the renderers in :mod:`bayes_alliance.report.format` (both
re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, CI_KIND, DEFAULT_CI_PROB, interval_name
from bayes_alliance.effects.derived import MEDIATION_BETWEEN, MEDIATION_BETWEEN_THERAPIST
from bayes_alliance.report import continuous as ct_report
from bayes_alliance.report.effect_notes import effect_note, effects_legend
from bayes_alliance.report.format import manuscript, number, to_latex, to_markdown
from bayes_alliance.report.labels import label_level, parameter_label, split_name
from bayes_alliance.report.outputs import ResultTables
from bayes_alliance.report.r2_words import component_label, r2_legend, share_of
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from bayes_alliance.inference.fit import FitResult

v = vocab

EFFECT_COLUMNS = [
    "parameter",
    "group",
    "label",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "interval",
    "ess_bulk",
    "ess_tail",
    "r_hat",
    "note",
]
R2_COLUMNS = [
    v.EQUATION,
    "denominator",
    v.COMPONENT,
    "label",
    "share_of",
    "mean",
    "ci_low",
    "ci_high",
    "interval",
]

# Named parameters that are effects (the rest are locations and scales of the traits and
# innovations, which stay in summary.csv), grouped as a manuscript groups them.
WITHIN = "State-like (within-person) paths"
BETWEEN = "Trait-like (between) effects"
STANDARDISED = "Standardised effects"
LONG_RUN = "Long-run effects"
ICC = "Intraclass correlations (variance shares)"
STATIONARITY = "Stationarity"
MEDIATION = "Between-level mediation (trait-like predictor as mediator)"
RELIABILITY = "Measurement (within-person reliability)"
GROUP_ORDER = (WITHIN, BETWEEN, MEDIATION, STANDARDISED, LONG_RUN, ICC, STATIONARITY, RELIABILITY)
NAMED_EFFECTS = {
    v.STATE_EFFECT: WITHIN,
    v.REVERSE_STATE_EFFECT: WITHIN,
    v.SAME_SESSION_EFFECT: WITHIN,
    v.OUTCOME_AUTOREGRESSION: WITHIN,
    v.PREDICTOR_AUTOREGRESSION: WITHIN,
    v.MODERATOR_EFFECT: WITHIN,
    v.SD_STATE_EFFECT_PATIENT: WITHIN,
    v.SD_STATE_EFFECT_THERAPIST: WITHIN,
    v.TRAIT_EFFECT_PATIENT: BETWEEN,
    v.TRAIT_EFFECT_THERAPIST: BETWEEN,
    v.BASELINE_EFFECT_PREDICTOR: MEDIATION,
    v.BASELINE_EFFECT_OUTCOME: MEDIATION,
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: MEDIATION,
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: MEDIATION,
    **dict.fromkeys(MEDIATION_BETWEEN + MEDIATION_BETWEEN_THERAPIST, MEDIATION),
    **dict.fromkeys(v.DRIFT_PARAMETERS, WITHIN),  # continuous time
}


def group_of(name: str) -> str | None:
    """The effects table's group of an effect row by its name (state-like, trait-like,
    mediation, ...), or None for a row the table leaves out."""
    base, _ = split_name(name)
    if base in NAMED_EFFECTS:
        return NAMED_EFFECTS[base]
    if base.startswith("standardised_"):
        return STANDARDISED
    if base.startswith("long_run_"):
        return LONG_RUN
    if base.startswith("icc_"):
        return ICC
    if base == "stationary":
        return STATIONARITY
    if base.startswith("reliability_"):
        return RELIABILITY
    return None


def label_effects(
    summary: pd.DataFrame,
    derived: pd.DataFrame,
    *,
    predictor: str,
    outcome: str,
    ci_prob: float,
    same_session: str = "none",
    baseline_level: str = "patient",
    measurement_error: bool = False,
) -> pd.DataFrame:
    """The labelled effects table from a posterior summary and the derived effects.

    Parameters
    ----------
    summary
        Named parameters indexed by name (columns mean, sd, ci_low, ci_high, ess_bulk,
        ess_tail, r_hat); only the effects among them are kept.
    derived
        Standardised and long-run effects, ICCs and ``stationary``, indexed by name.
    predictor, outcome
        Column names of x and y, used in labels and notes.
    ci_prob
        Probability of the (highest-density) intervals in both tables.
    same_session
        Direction of a lag-0 path.
    baseline_level
        Level of a baseline (the a and c' paths' labels follow it).
    measurement_error
        Whether the model has measurement error (the notes of the session-level ICCs and the
        legend say what it changes).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EFFECT_COLUMNS`, rows grouped in :data:`GROUP_ORDER`.
    """
    both = pd.concat(
        [f.loc[[n for n in f.index if group_of(str(n)) is not None]] for f in (summary, derived)]
    )
    rows = []
    for name, r in both.iterrows():
        name = str(name)
        rows.append(
            {
                "parameter": name,
                "group": group_of(name),
                "label": parameter_label(name, predictor, outcome, same_session, baseline_level),
                **{c: float(r[c]) if c in r else np.nan for c in EFFECT_COLUMNS[3:7]},
                "interval": interval_name(ci_prob, CI_KIND),
                **{c: float(r[c]) if c in r else np.nan for c in ("ess_bulk", "ess_tail", "r_hat")},
                "note": effect_note(
                    name, predictor, outcome, same_session, baseline_level, measurement_error
                ),
            }
        )
    out = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    out = out.iloc[np.argsort([order[g] for g in out["group"]], kind="stable")]
    out = out.reset_index(drop=True)
    out.attrs["note"] = effects_legend(ci_prob, measurement_error)
    return out


def effects_table(result: FitResult, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
    """Every effect of a fit with a label, its interval's name and a note in words.

    Parameters
    ----------
    result
        A fitted model.
    ci_prob
        Probability of the highest-density intervals (0.95 is what psychology journals print).

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, group, label, mean, sd, ci_low, ci_high, interval, ess_bulk,
        ess_tail, r_hat, note``: the state-like and trait-like paths, the standardised and
        long-run effects, ICCs and (free first session) the probability of stationarity.
        Write it with ``to_csv(path, index=False)``.
    """
    roles = result.data.roles
    out = label_effects(
        result.summary(ci_prob=ci_prob),
        result.effects(ci_prob),
        predictor=roles.predictor,
        outcome=roles.outcome,
        ci_prob=ci_prob,
        same_session=result.spec.same_session,
        baseline_level=label_level(result.spec),
        measurement_error=result.spec.measurement_error,
    )
    out["label"] = ct_report.time_labels(
        list(out["parameter"]), list(out["label"]), result.spec, roles.predictor, roles.outcome
    )
    return out


def summary_table(result: FitResult, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
    """The posterior summary of every named parameter with a ``label`` column (first) and the
    interval named in ``interval``; indexed by parameter name."""
    s = result.summary(ci_prob=ci_prob)
    roles = result.data.roles
    labels = [
        parameter_label(
            str(n),
            roles.predictor,
            roles.outcome,
            result.spec.same_session,
            label_level(result.spec),
        )
        for n in s.index
    ]
    labels = ct_report.time_labels(
        [str(n) for n in s.index], labels, result.spec, roles.predictor, roles.outcome
    )
    out = s.copy()
    out.insert(0, "label", labels)
    out.insert(5, "interval", interval_name(ci_prob, CI_KIND))
    return out


# ----------------------------------------------------------------------------- R-squared


def r2_components_present(spec: ModelSpec) -> dict[str, set[str]]:
    """The variance components each equation of this model has (the others are zero by
    construction: no rows for them).

    Returns
    -------
    dict
        ``{"outcome": {...}, "predictor": {...}}`` of component names, sums included.
    """
    three = spec.therapist_level
    var1 = spec.dynamics == "var1"
    slopes_p = v.PATIENT in spec.random_slopes
    slopes_t = v.THERAPIST in spec.random_slopes
    time = {"time"} if spec.session_means or spec.trend else set()
    out: dict[str, set[str]] = {}
    for eq in (v.OUTCOME, v.PREDICTOR):
        if eq == v.OUTCOME:
            f1 = var1 or spec.same_session == "predictor_to_outcome"
            fs = {"f1"} if f1 else set()
            fs |= {"f2", "f3"} if three else {"f2"}
            vs = ({"v12"} if slopes_p else set()) | ({"v13"} if slopes_t else set())
            if not three:
                vs = {"v"} if vs else set()
        else:
            f1 = (var1 and spec.bivariate) or spec.same_session == "outcome_to_predictor"
            fs = {"f1"} if f1 else set()
            if spec.baseline:  # the baseline's a path, at its level (both when split)
                fs |= {"f3"} if spec.baseline_level == v.THERAPIST else {"f2"}
                fs |= {"f3"} if spec.splits_baseline() else set()
            vs = set()
        ms = {"m2", "m3"} if three else {"m"}
        error = {"omega2"} if spec.measurement_error else set()
        comps = fs | vs | ms | {"sigma2"} | error | time
        # Sums only where they add something: f of one fixed part is that part.
        if len(fs) >= 2:
            comps.add("f")
        if vs and fs:
            comps.add("fv")
        if vs and "f1" in fs:
            comps.add("f1v")
        comps |= {"fvm", "bayes_r2"}
        out[eq] = comps
    return out


def label_r2(
    r2: pd.DataFrame, spec: ModelSpec, *, predictor: str, outcome: str, ci_prob: float
) -> pd.DataFrame:
    """The labelled R-squared table: rows of components the model has, with labels.

    Parameters
    ----------
    r2
        The tidy table of :meth:`~bayes_alliance.inference.fit.FitResult.r2` (equation, denominator,
        component, mean, ci_low, ci_high; equal-tailed intervals).
    spec
        The model: which components exist (:func:`r2_components_present`).
    predictor, outcome
        Column names of x and y.
    ci_prob
        Probability of the intervals (named in the ``interval`` column).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`R2_COLUMNS`. A denominator left with a single component (its share is 1
        by construction) is dropped too.
    """
    present = r2_components_present(spec)
    keep = [
        str(c) in present.get(str(e), set())
        for e, c in zip(r2[v.EQUATION], r2[v.COMPONENT], strict=True)
    ]
    t = r2.loc[keep].copy()
    sizes = t.groupby(["equation", "denominator"])[v.COMPONENT].transform("size")
    t = t[(sizes > 1) | (t["denominator"] == "model")]
    has_time = bool(spec.session_means or spec.trend)
    has_error = spec.measurement_error
    names = {v.OUTCOME: outcome, v.PREDICTOR: predictor}
    t["label"] = [
        component_label(str(c), str(e), spec)
        for e, c in zip(t[v.EQUATION], t[v.COMPONENT], strict=True)
    ]
    t["share_of"] = [
        share_of(str(d), names.get(str(e), str(e)), has_time, has_error)
        for e, d in zip(t[v.EQUATION], t["denominator"], strict=True)
    ]
    t["interval"] = interval_name(ci_prob, BAND_KIND)
    out = t[R2_COLUMNS].reset_index(drop=True)
    note = ct_report.r2_note(spec)
    out.attrs["note"] = r2_legend(ci_prob, has_time, has_error) + (f" {note}" if note else "")
    return out


def r2_table(result: FitResult, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
    """R-squared per component of a fit, labelled, without the components it does not have.

    Parameters
    ----------
    result
        A fitted model.
    ci_prob
        Probability of the equal-tailed intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``equation, denominator, component, label, share_of, mean, ci_low, ci_high,
        interval``. Write it with ``to_csv(path, index=False)``.
    """
    roles = result.data.roles
    return label_r2(
        result.r2(ci_prob),
        result.spec,
        predictor=roles.predictor,
        outcome=roles.outcome,
        ci_prob=ci_prob,
    )


def joint_captions(result: FitResult) -> dict[str, tuple[str, str]]:
    """Captions and LaTeX labels of the joint model's manuscript tables."""
    x, y = result.data.roles.predictor, result.data.roles.outcome
    return {
        "effects": (f"Trait-like and state-like effects of {x} on {y}", "tab:effects"),
        "r2": (f"Variance of {x} and {y} explained by component (R-squared)", "tab:r2"),
    }


def joint_tables(result: FitResult, ci_prob: float = DEFAULT_CI_PROB) -> ResultTables:
    """The joint model's labelled summary, effects and R-squared tables, with their captions
    (the files of :func:`bayes_alliance.report.outputs.write_tables`)."""
    return ResultTables(
        summary_table(result, ci_prob),
        effects_table(result, ci_prob),
        r2_table(result, ci_prob),
        joint_captions(result),
    )


__all__ = [
    "component_label",
    "effect_note",
    "effects_table",
    "interval_name",
    "joint_captions",
    "joint_tables",
    "label_effects",
    "label_r2",
    "manuscript",
    "number",
    "parameter_label",
    "r2_components_present",
    "r2_table",
    "summary_table",
    "to_latex",
    "to_markdown",
]
