"""The priors as a report states them: the rule that scaled each default to the data, the
priors actually used (after overrides) and the data's scale in one sentence.

Split from :mod:`bayes_alliance.report.model_text`, whose symbols the table uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.report.model_text import SYMBOLS
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from bayes_alliance.data.session_data import SessionData

v = vocab

# The free first session's three priors share one boundary-avoiding factor
# (bayes_alliance.model.priors.first_cov_regulariser).
_FIRST_FACTOR = (
    "; jointly times exp(-0.05 tr(diag(SD(x)², SD(y)²) F⁻¹)), F the first-session "
    "covariance: keeps F off singular"
)
SCALE_RULES = {
    v.STATE_EFFECT: "σ = SD(y) / SD(x)",
    v.REVERSE_STATE_EFFECT: "σ = SD(x) / SD(y)",
    v.OUTCOME_AUTOREGRESSION: "σ = 0.5 (no units)",
    v.PREDICTOR_AUTOREGRESSION: "σ = 0.5 (no units)",
    v.SAME_SESSION_EFFECT: "σ = SD of the receiving / SD of the sending variable",
    v.TRAIT_CORR_PATIENT: "LKJ(1): uniform on (-1, 1)",
    v.TRAIT_CORR_THERAPIST: "LKJ(1) (Beta(1.5, 1.5) with therapist slopes: the 3 x 3 C-vine)",
    v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR: "3 x 3 LKJ(1) C-vine: (r + 1) / 2 ~ Beta(1.5, 1.5)",
    v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME: "3 x 3 LKJ(1) C-vine: uniform",
    v.INTERCEPT_PREDICTOR: "μ = mean(x), σ = 2.5 SD(x)",
    v.INTERCEPT_OUTCOME: "μ = mean(y), σ = 2.5 SD(y)",
    "session_mean_predictor": "μ = mean(x), σ = 2.5 SD(x)",
    "session_mean_outcome": "μ = mean(y), σ = 2.5 SD(y)",
    v.SD_PATIENT_PREDICTOR: "σ = SD(x)",
    v.SD_PATIENT_OUTCOME_TOTAL: "σ = SD(y)",
    v.SD_THERAPIST_PREDICTOR: "Gamma(2, rate 4 / SD(x)): mean 0.5 SD(x), 0 at 0",
    v.SD_THERAPIST_OUTCOME_TOTAL: "Gamma(2, rate 4 / SD(y)): mean 0.5 SD(y), 0 at 0",
    v.SD_STATE_EFFECT_PATIENT: "σ = 0.25 SD(y) / SD(x)",
    v.SD_STATE_EFFECT_THERAPIST: "σ = 0.25 SD(y) / SD(x)",
    v.INNOVATION_SD_PREDICTOR: "σ = SD(x)",
    v.INNOVATION_SD_OUTCOME: "σ = SD(y)",
    v.INNOVATION_CORR: "uniform on (-1, 1)",
    v.MEASUREMENT_ERROR_SD_PREDICTOR: "σ = 0.5 SD(x)",
    v.MEASUREMENT_ERROR_SD_OUTCOME: "σ = 0.5 SD(y)",
    v.SD_LOG_INNOVATION_PREDICTOR_PATIENT: "σ = 0.5 (log scale)",
    v.SD_LOG_INNOVATION_OUTCOME_PATIENT: "σ = 0.5 (log scale)",
    v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST: "σ = 0.25 (log scale)",
    v.SD_LOG_INNOVATION_OUTCOME_THERAPIST: "σ = 0.25 (log scale)",
    v.TRAIT_INSTABILITY_EFFECT: "σ = SD of the trait's variable",
    v.INDICATOR_LOADING_PREDICTOR: "μ = σ = SD(indicator) / SD(marker)",
    v.INDICATOR_INTERCEPT_PREDICTOR: "σ = SD(indicator)",
    v.INDICATOR_SD_PREDICTOR: "σ = SD(indicator)",
    v.INDICATOR_LOADING_OUTCOME: "μ = σ = SD(indicator) / SD(marker)",
    v.INDICATOR_INTERCEPT_OUTCOME: "σ = SD(indicator)",
    v.INDICATOR_SD_OUTCOME: "σ = SD(indicator)",
    v.MODERATOR_EFFECT: "σ = 0.5 SD(y) / SD(x) / SD(moderator)",
    v.BASELINE_EFFECT_PREDICTOR: "σ = SD(x) / SD(baseline over its level's units)",
    v.BASELINE_EFFECT_OUTCOME: "σ = SD(y) / SD(baseline over its level's units)",
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: "σ = SD(x) / SD(therapist means of the baseline)",
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: "σ = SD(y) / SD(therapist means of the baseline)",
    v.TREND_PREDICTOR: "σ = 0.1 SD(x) per session",
    v.TREND_OUTCOME: "σ = 0.1 SD(y) per session",
    v.SD_TREND_PREDICTOR: "σ = 0.05 SD(x)",
    v.SD_TREND_OUTCOME: "σ = 0.05 SD(y)",
    "first_sd_predictor": "σ = SD(x)" + _FIRST_FACTOR,
    "first_sd_outcome": "σ = SD(y)" + _FIRST_FACTOR,
    "first_corr": "uniform on (-1, 1)" + _FIRST_FACTOR,
}
# Continuous time: the scale rules per median interval m between a patient's sessions
# (bayes_alliance.model.continuous.drift_priors), in the fit's time unit.
CONTINUOUS_RULES = {
    v.DRIFT_PREDICTOR_AUTOREGRESSION: "μ = -0.7 / m, σ = 0.7 / m (m: median interval)",
    v.DRIFT_OUTCOME_AUTOREGRESSION: "μ = -0.7 / m, σ = 0.7 / m (m: median interval)",
    v.DRIFT_STATE_EFFECT: "σ = 0.5 SD(y) / SD(x) / m (m: median interval)",
    v.DRIFT_REVERSE_STATE_EFFECT: "σ = 0.5 SD(x) / SD(y) / m (m: median interval)",
    v.DIFFUSION_SD_PREDICTOR: "σ = SD(x) sqrt(1.4 / m) (m: median interval)",
    v.DIFFUSION_SD_OUTCOME: "σ = SD(y) sqrt(1.4 / m) (m: median interval)",
    v.DIFFUSION_CORR: "fixed",
    v.SD_STATE_EFFECT_PATIENT: "σ = 0.25 SD(y) / SD(x) / m (m: median interval)",
    v.SD_STATE_EFFECT_THERAPIST: "σ = 0.25 SD(y) / SD(x) / m (m: median interval)",
}
# Priors that the stationarity constraint truncates (a stationary first session only).
TRUNCATED = (
    *v.DRIFT_PARAMETERS,
    v.STATE_EFFECT,
    v.REVERSE_STATE_EFFECT,
    v.OUTCOME_AUTOREGRESSION,
    v.PREDICTOR_AUTOREGRESSION,
    v.SAME_SESSION_EFFECT,
    v.MODERATOR_EFFECT,
    v.SD_STATE_EFFECT_PATIENT,
    v.SD_STATE_EFFECT_THERAPIST,
)


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(x) for x in value) + "]"
    return f"{float(value):.3g}"


def priors_used(spec: ModelSpec, data: SessionData) -> dict[str, dict[str, Any]]:
    """The priors actually used by name, with numeric arguments (``{"dist": ..., <arguments>}``):
    the defaults scaled to ``data`` exactly as :func:`bayes_alliance.model.build.build_model`
    scales them, or the spec's overrides."""
    from bayes_alliance.model.build import extra_priors
    from bayes_alliance.model.covariates import (
        baseline_between_sd,
        baseline_unit_values,
        moderator_values,
    )
    from bayes_alliance.model.priors import DataScale, default_priors, numeric

    z = moderator_values(data, spec)
    zb = baseline_unit_values(data, spec)  # the paths' scale: SD over the level's units
    scale = DataScale.of(data)
    used = default_priors(
        spec,
        scale,
        z.std(axis=0) if z is not None else 1.0,
        zb.std(axis=0) if zb is not None else 1.0,
        extra_priors(data, spec, scale),
        baseline_between_sd=baseline_between_sd(data, spec),
    )
    return {name: numeric(prior) for name, prior in used.items()}


def priors_table(spec: ModelSpec, data: SessionData) -> pd.DataFrame:
    """The priors actually used: the defaults scaled to ``data``, or the spec's overrides.

    Parameters
    ----------
    spec
        The model options (``spec.priors`` holds the overrides).
    data
        The data the model was fitted to: its means and SDs scale the defaults exactly as
        :func:`bayes_alliance.model.build.build_model` does.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``symbol``, ``prior`` (e.g. ``Normal(mu=0, sigma=0.84)``),
        ``source`` (the scaling rule, or "set in the spec") and ``note`` (truncation).
    """
    rows = []
    rules = {**SCALE_RULES, **CONTINUOUS_RULES} if spec.time_model == "continuous" else SCALE_RULES
    for name, p in priors_used(spec, data).items():
        args = ", ".join(f"{k}={_fmt(val)}" for k, val in p.items() if k != "dist")
        note = ""
        if spec.first_session == "stationary" and spec.dynamics == "var1" and name in TRUNCATED:
            note = "truncated to stationary dynamics (with its normalising constant)"
        rows.append(
            {
                "parameter": name,
                "symbol": SYMBOLS.get(name, ""),
                "prior": f"{p['dist']}({args})",
                "source": "set in the spec"
                if name in spec.priors
                else "default: " + rules.get(name, "fixed"),
                "note": note,
            }
        )
    return pd.DataFrame(rows).set_index("parameter")


def data_scale_sentence(data: SessionData) -> str:
    """The data's location and scale that the default priors use."""
    from bayes_alliance.model.priors import DataScale

    s = DataScale.of(data)
    x, y = data.roles.predictor, data.roles.outcome
    return (
        f"Default priors are weakly informative and scaled to the data: {x} has mean "
        f"{s.mean_x:.3g} and SD {s.sd_x:.3g}, {y} has mean {s.mean_y:.3g} and SD {s.sd_y:.3g} "
        "(over all observed sessions), so the same prior means the same thing in any units."
    )
