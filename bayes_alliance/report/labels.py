"""Words for result tables: labels of parameters and R-squared components, notes that say
what an effect means, legends under tables, and the names of intervals.

Pure functions of names, column names and a :class:`~bayes_alliance.spec.model_spec.ModelSpec`; the
tables of :mod:`bayes_alliance.report.tables` and the report use them.
"""

from __future__ import annotations

import re

from bayes_alliance.core import vocab
from bayes_alliance.kernels import r2
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
ARROW = "→"
LEVEL_WORDS = {"patient": "patient", "therapist": "therapist", "session": "session"}


def interval_name(ci_prob: float, kind: str = "hdi") -> str:
    """The interval as a header names it: ``"95% HDI"`` or ``"95% interval"`` (equal-tailed).

    Parameters
    ----------
    ci_prob
        Probability mass of the interval, in (0, 1).
    kind
        ``"hdi"`` (highest density) or ``"eti"`` (equal-tailed).
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    pct = f"{ci_prob * 100:.4g}%"
    return f"{pct} HDI" if kind == "hdi" else f"{pct} interval"


def split_name(name: str) -> tuple[str, str]:
    """``"moderator_effect[z]"`` -> (``"moderator_effect"``, ``"z"``)."""
    m = re.fullmatch(r"(.+)\[(.+)\]", name)
    return (m.group(1), m.group(2)) if m else (name, "")


def parameter_label(
    name: str, x: str, y: str, same_session: str = "none", baseline_level: str = "patient"
) -> str:
    """Plain-language label of a named parameter or a derived effect.

    Parameters
    ----------
    name
        A vocabulary name, a derived effect's name, or ``name[coord]`` for a vector entry.
    x, y
        The predictor's and the outcome's column names.
    same_session
        Direction of the lag-0 path (the label of ``same_session_effect`` follows it).
    baseline_level
        Level of a baseline (between-level mediation): the a and c' paths act on the patients'
        traits or, at therapist level, on the therapists' means.
    """
    base, coord = split_name(name)
    z = coord or "baseline"
    # The latent means a baseline's paths act on: patients' traits, or therapists' means.
    at = "therapist mean of" if baseline_level == v.THERAPIST else "trait of"
    tm = "therapist mean of"
    lag0 = (
        f"same-session path: {y} (t) {ARROW} {x} (t)"
        if same_session == "outcome_to_predictor"
        else f"same-session path: {x} (t) {ARROW} {y} (t)"
    )
    fixed = {
        v.STATE_EFFECT: f"state-like effect: {x} (t-1) {ARROW} {y} (t)",
        v.REVERSE_STATE_EFFECT: f"reverse path: {y} (t-1) {ARROW} {x} (t)",
        v.SAME_SESSION_EFFECT: lag0,
        v.OUTCOME_AUTOREGRESSION: f"autoregression of {y}",
        v.PREDICTOR_AUTOREGRESSION: f"autoregression of {x}",
        v.MODERATOR_EFFECT: f"moderation of the state-like effect by {coord or 'the moderator'}",
        v.SD_STATE_EFFECT_PATIENT: "SD of the state-like effect between patients",
        v.SD_STATE_EFFECT_THERAPIST: "SD of the state-like effect between therapists",
        v.TRAIT_EFFECT_PATIENT: f"trait-like effect between patients: {x} {ARROW} {y}",
        v.TRAIT_EFFECT_THERAPIST: f"trait-like effect between therapists: {x} {ARROW} {y}",
        v.INTERCEPT_PREDICTOR: f"mean of {x}",
        v.INTERCEPT_OUTCOME: f"mean of {y}",
        v.SD_PATIENT_PREDICTOR: f"SD of patients' traits of {x}",
        v.SD_PATIENT_OUTCOME: f"SD of patients' traits of {y} (beyond the trait effect)",
        v.SD_THERAPIST_PREDICTOR: f"SD of therapists' means of {x}",
        v.SD_THERAPIST_OUTCOME: f"SD of therapists' means of {y} (beyond the trait effect)",
        v.INNOVATION_SD_PREDICTOR: f"innovation SD of {x}",
        v.INNOVATION_SD_OUTCOME: f"innovation SD of {y}",
        v.INNOVATION_CORR: "correlation of the innovations",
        v.TREND_PREDICTOR: f"mean trend of {x} per session",
        v.TREND_OUTCOME: f"mean trend of {y} per session",
        v.SD_TREND_PREDICTOR: f"SD of patients' trends of {x}",
        v.SD_TREND_OUTCOME: f"SD of patients' trends of {y}",
        "standardised_state_effect": "state-like effect, standardised",
        "standardised_reverse_state_effect": "reverse path, standardised",
        "standardised_same_session_effect": "same-session path, standardised",
        "standardised_trait_effect_patient": "trait-like effect between patients, standardised",
        "standardised_trait_effect_therapist": "trait-like effect between therapists, standardised",
        "long_run_state_effect": f"long-run effect of a sustained shift in {x} on {y}",
        "long_run_reverse_state_effect": f"long-run effect of a sustained shift in {y} on {x}",
        "long_run_state_effect_single_equation": f"long-run change in {y} per unit of sustained change in {x}",
        "stationary": "probability that the average dynamics are stationary",
        v.BASELINE_EFFECT_PREDICTOR: f"a path: {z} {ARROW} {at} {x}",
        v.BASELINE_EFFECT_OUTCOME: f"direct path c': {z} {ARROW} {at} {y}",
        "indirect_effect_between": (
            f"indirect effect ab: {coord or 'baseline'} {ARROW} trait of {x} {ARROW} trait of {y}"
        ),
        "direct_effect_between": f"direct effect c': {coord or 'baseline'} {ARROW} trait of {y}",
        "total_effect_between": f"total effect c' + ab of {coord or 'baseline'} on trait of {y}",
        "proportion_mediated_between": (
            f"proportion mediated ab / (ab + c') of {coord or 'baseline'} through trait of {x}"
        ),
        "indirect_effect_between_therapist": (
            f"indirect effect a b_T: {z} {ARROW} {tm} {x} {ARROW} {tm} {y} (therapist level)"
        ),
        "direct_effect_between_therapist": (
            f"direct effect c': {z} {ARROW} {tm} {y} (therapist level)"
        ),
        "total_effect_between_therapist": (
            f"total effect c' + a b_T of {z} on {tm} {y} (therapist level)"
        ),
        "proportion_mediated_between_therapist": (
            f"proportion mediated a b_T / (a b_T + c') of {z} through {tm} {x} (therapist level)"
        ),
    }
    if base in fixed:
        label = fixed[base]
        # Vector entries other than moderators and baseline paths (session-specific
        # innovations) keep their coord.
        named = (v.MODERATOR_EFFECT, v.BASELINE_EFFECT_PREDICTOR, v.BASELINE_EFFECT_OUTCOME)
        if coord and base not in named and "_between" not in base:
            return f"{label} [{coord}]"
        return label
    m = re.fullmatch(r"icc_(predictor|outcome)_(\w+)", base)
    if m:
        var = x if m.group(1) == "predictor" else y
        return f"ICC of {var}: {LEVEL_WORDS.get(m.group(2), m.group(2))} share"
    return name


def effect_note(
    name: str, x: str, y: str, same_session: str = "none", baseline_level: str = "patient"
) -> str:
    """What an effect means, in words: the legend of effects tables."""
    base, _ = split_name(name)
    within = (
        "within-person SD units: the raw coefficient times SD_w(predictor) / SD_w(outcome), "
        "with the model-implied within-person SDs (Schuurman et al. 2016)"
    )
    notes = {
        v.STATE_EFFECT: (
            f"change in {y} at the next session per point of {x} above the patient's own "
            f"trait level, holding the previous {y}"
        ),
        v.REVERSE_STATE_EFFECT: (
            f"change in {x} at the next session per point of {y} above the patient's own level"
        ),
        v.SAME_SESSION_EFFECT: "within-session path between the two states (lag 0)",
        v.OUTCOME_AUTOREGRESSION: f"carry-over of a deviation in {y} to the next session",
        v.PREDICTOR_AUTOREGRESSION: f"carry-over of a deviation in {x} to the next session",
        v.MODERATOR_EFFECT: "change in the state-like effect per unit of the (centred) moderator",
        v.SD_STATE_EFFECT_PATIENT: "how much patients' own state-like effects vary",
        v.SD_STATE_EFFECT_THERAPIST: "how much the state-like effect varies between therapists",
        v.TRAIT_EFFECT_PATIENT: (
            f"difference in usual {y} per point of usual {x} between patients of one therapist"
        ),
        v.TRAIT_EFFECT_THERAPIST: (
            f"difference in patients' usual {y} per point of their therapist's average {x}"
        ),
        "standardised_state_effect": within,
        "standardised_reverse_state_effect": within.replace(
            "SD_w(predictor) / SD_w(outcome)", "SD_w(outcome) / SD_w(predictor)"
        ),
        "standardised_same_session_effect": within,
        "standardised_trait_effect_patient": (
            "between-patient SD units: the trait effect times SD of the patients' traits of "
            f"{x} / SD of their traits of {y}"
        ),
        "standardised_trait_effect_therapist": (
            "between-therapist SD units: the trait effect times SD of the therapists' means of "
            f"{x} / SD of their means of {y}"
        ),
        "long_run_state_effect": (
            f"total change in {y} after a sustained one-point shift in the equation of {x}, "
            "through every lagged path and both autoregressions: an entry of (B0 - Phi)^-1; "
            f"the shift also moves {x} itself"
        ),
        "long_run_reverse_state_effect": (
            f"total change in {x} after a sustained one-point shift in the equation of {y}: "
            "an entry of (B0 - Phi)^-1"
        ),
        "long_run_state_effect_single_equation": (
            f"change in {y} per point of sustained change in {x}: (state-like effect"
            + (" + same-session path" if same_session == "predictor_to_outcome" else "")
            + f") / (1 - autoregression of {y})"
        ),
        v.BASELINE_EFFECT_PREDICTOR: (
            f"difference in patients' trait of {x} per unit of the (centred) baseline "
            "characteristic (a)"
            if baseline_level != v.THERAPIST
            else f"difference in therapists' mean {x} of their patients per unit of the "
            "(centred) therapist characteristic (a)"
        ),
        v.BASELINE_EFFECT_OUTCOME: (
            f"difference in patients' trait of {y} per unit of the baseline characteristic at "
            f"the same trait of {x} (direct path c')"
            if baseline_level != v.THERAPIST
            else f"difference in therapists' mean {y} per unit of the therapist characteristic "
            f"at the same mean {x} (direct path c')"
        ),
        "indirect_effect_between": (
            f"a x b per draw: the baseline's effect on the trait of {y} carried by the trait of "
            f"{x} (b = trait-like effect between patients)"
        ),
        "direct_effect_between": f"c': the baseline's effect on the trait of {y} not through {x}",
        "total_effect_between": f"c' + ab: the baseline's whole effect on the trait of {y}",
        "proportion_mediated_between": (
            "ab / (ab + c') per draw; unstable (heavy tails) when the total effect is near 0"
        ),
        "indirect_effect_between_therapist": (
            f"a x b_T per draw: the therapist characteristic's effect on the therapists' mean "
            f"{y} carried by their mean {x} (b_T = trait-like effect between therapists)"
        ),
        "direct_effect_between_therapist": (
            f"c': the therapist characteristic's effect on the therapists' mean {y} not through {x}"
        ),
        "total_effect_between_therapist": (
            f"c' + a b_T: the therapist characteristic's whole effect on the therapists' mean {y}"
        ),
        "proportion_mediated_between_therapist": (
            "a b_T / (a b_T + c') per draw; unstable (heavy tails) when the total effect is near 0"
        ),
        "stationary": (
            "posterior probability that the average dynamics are stationary (free first "
            "session; with a stationary first session stationarity is imposed, not estimated)"
        ),
    }
    if base in notes:
        return notes[base]
    m = re.fullmatch(r"icc_(predictor|outcome)_(\w+)", base)
    if m:
        var = x if m.group(1) == "predictor" else y
        part = {
            "patient": "stable differences between patients (trait-like)",
            "therapist": "differences between therapists",
            "session": "session-to-session fluctuation within patients (state-like)",
        }.get(m.group(2), m.group(2))
        return f"share of the variance of {var} due to {part}; session means and trends excluded"
    return ""


def effects_legend(ci_prob: float) -> str:
    """The note under an effects table."""
    return (
        f"Posterior means with {interval_name(ci_prob, 'hdi')}s (highest-density intervals) in "
        "brackets. Raw paths are in the variables' own units per session. Standardised effects "
        "are in SD units of the level they act at: within-person SDs for state-like paths, "
        "between-patient or between-therapist SDs for trait-like effects. Long-run effects add "
        "up a sustained shift over all later sessions through the lagged paths. ICCs are "
        "shares of each variable's variance at each level."
    )


def component_label(component: str, equation: str, spec: ModelSpec) -> str:
    """Plain-language label of an R-squared component in one equation of this model."""
    if component == "f1":
        if equation == v.PREDICTOR:
            parts = []
            if spec.dynamics == "var1":
                parts.append("autoregression" + (" and reverse path" if spec.reverse_lag else ""))
            if spec.same_session == "outcome_to_predictor":
                parts.append("same-session path")
            return " and ".join(parts) + " (f1)"
        if spec.dynamics != "var1":
            return "same-session path (f1)"
        if spec.same_session == "predictor_to_outcome":
            return "state effects, same-session path and autoregression (f1)"
        if spec.moderators:
            return "state effects (with moderators) and autoregression (f1)"
    if component == "fvm":
        slopes = ", random slopes" if spec.random_slopes and equation == v.OUTCOME else ""
        return f"fixed effects{slopes} and intercept variance (fvm)"
    if component == "f2" and spec.baseline and spec.baseline_level != v.THERAPIST:
        if equation == v.PREDICTOR:
            return "baseline characteristic, a path (f2)"
        return "patient trait effect and baseline characteristic (f2)"
    if component == "f3" and spec.baseline and spec.baseline_level == v.THERAPIST:
        if equation == v.PREDICTOR:
            return "therapist baseline characteristic, a path (f3)"
        return "therapist trait effect and therapist baseline characteristic (f3)"
    if component == "bayes_r2":
        return "whole-model Bayesian R-squared"
    return r2.LABELS.get(component, component)


def share_of(denominator: str, var: str, has_time: bool) -> str:
    words = {
        "total": f"total variance of {var}"
        + (" (including session means and trends)" if has_time else ""),
        "within": f"within-patient (session-level) variance of {var}",
        "between": f"between-patient variance of {var}",
        "level1": f"session-level (level 1) variance of {var}",
        "level2": f"patient-level (level 2) variance of {var}",
        "level3": f"therapist-level (level 3) variance of {var}",
        "model": f"variance of {var} (fitted values plus innovations; Gelman et al. 2019)",
    }
    return words.get(denominator, denominator)


def r2_legend(ci_prob: float, has_time: bool = False) -> str:
    """The note under an R-squared table."""
    return (
        "Shares of variance explained per component (Rights & Sterba 2019, 2023), computed per "
        f"posterior draw from the model's own moments: posterior means with "
        f"{interval_name(ci_prob, 'eti')}s (equal-tailed) in brackets. f1: the lagged "
        "state-like paths and the autoregression (within person); f2, f3: the trait-like "
        "effects at patient and therapist level; v: variation of the state-like effect "
        "(random slopes); m: intercept (trait) variance not explained by the predictor; "
        "sigma2: innovations. f, fv, fvm are sums. Components the model does not have are "
        "left out."
        + (
            " time: session means and trends, in the total only (level shares exclude it)."
            if has_time
            else ""
        )
    )
