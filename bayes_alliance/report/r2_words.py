"""Words for R-squared tables: each component's label in an equation of the model, what a
denominator's shares are shares of, and the legend under the table (Rights & Sterba 2019,
2023)."""

from __future__ import annotations

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, interval_name
from bayes_alliance.kernels import r2
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab


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


def share_of(denominator: str, var: str, has_time: bool, has_error: bool = False) -> str:
    """What a denominator's shares are shares of, in words (``has_error``: the model's
    residual includes measurement error)."""
    model = (
        "fitted values plus innovations and measurement error"
        if has_error
        else ("fitted values plus innovations")
    )
    words = {
        "total": f"total variance of {var}"
        + (" (including session means and trends)" if has_time else ""),
        "within": f"within-patient (session-level) variance of {var}",
        "between": f"between-patient variance of {var}",
        "level1": f"session-level (level 1) variance of {var}",
        "level2": f"patient-level (level 2) variance of {var}",
        "level3": f"therapist-level (level 3) variance of {var}",
        "model": f"variance of {var} ({model}; Gelman et al. 2019)",
    }
    return words.get(denominator, denominator)


def r2_legend(ci_prob: float, has_time: bool = False, has_error: bool = False) -> str:
    """The note under an R-squared table."""
    return (
        "Shares of variance explained per component (Rights & Sterba 2019, 2023), computed per "
        f"posterior draw from the model's own moments: posterior means with "
        f"{interval_name(ci_prob, BAND_KIND)}s (equal-tailed) in brackets. f1: the lagged "
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
        + (
            " omega2: measurement error of the observed scores, a second session-level "
            "residual beside the innovations (in the within / level-1 and total denominators)."
            if has_error
            else ""
        )
    )
