"""The model as a report states it: equations, symbols, priors.

Every function here reads a :class:`~bayes_alliance.spec.model_spec.ModelSpec` (and, for the priors, the
data) and returns text or a small table, so what the report says about the model follows the
options actually fitted: a two-level model has no therapist terms, a model without random
slopes has no slope equation. Equations are Unicode text in the linear notation of
:mod:`bayes_alliance.report.mathml`, which typesets them as MathML in the HTML page (the
Markdown and the Word document keep the text). How it was fitted and what the report cites
(sampler settings, versions, the methods paragraph, references) is in
:mod:`bayes_alliance.report.methods`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_alliance.core import vocab
from bayes_alliance.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    pass

v = vocab

# Symbols of the equations, by parameter name (the prior table and the legend use them).
SYMBOLS = {
    v.STATE_EFFECT: "φ_yx",
    v.REVERSE_STATE_EFFECT: "φ_xy",
    v.OUTCOME_AUTOREGRESSION: "φ_yy",
    v.PREDICTOR_AUTOREGRESSION: "φ_xx",
    v.TRAIT_EFFECT_PATIENT: "β_P",
    v.TRAIT_EFFECT_THERAPIST: "β_T",
    v.INTERCEPT_PREDICTOR: "μ_x",
    v.INTERCEPT_OUTCOME: "μ_y",
    "session_mean_predictor": "μ_x(t)",
    "session_mean_outcome": "μ_y(t)",
    v.SD_PATIENT_PREDICTOR: "σ_Px",
    v.SD_PATIENT_OUTCOME: "σ_Py",
    v.SD_THERAPIST_PREDICTOR: "σ_Tx",
    v.SD_THERAPIST_OUTCOME: "σ_Ty",
    v.SD_PATIENT_OUTCOME_TOTAL: "s_Py",
    v.SD_THERAPIST_OUTCOME_TOTAL: "s_Ty",
    v.TRAIT_CORR_PATIENT: "r_P",
    v.TRAIT_CORR_THERAPIST: "r_T",
    v.SLOPE_TRAIT_CORR_THERAPIST_PREDICTOR: "r_xc",
    v.SLOPE_TRAIT_PARTIAL_CORR_THERAPIST_OUTCOME: "r_yc|x",
    v.SLOPE_TRAIT_CORR_THERAPIST_OUTCOME: "r_yc",
    v.SD_STATE_EFFECT_PATIENT: "τ_d",
    v.SD_STATE_EFFECT_THERAPIST: "τ_c",
    v.INNOVATION_SD_PREDICTOR: "σ_x",
    v.INNOVATION_SD_OUTCOME: "σ_y",
    v.INNOVATION_CORR: "ρ",
    v.MEASUREMENT_ERROR_SD_PREDICTOR: "ω_x",
    v.MEASUREMENT_ERROR_SD_OUTCOME: "ω_y",
    v.SD_LOG_INNOVATION_PREDICTOR_PATIENT: "s_Px",
    v.SD_LOG_INNOVATION_OUTCOME_PATIENT: "s_Py",
    v.SD_LOG_INNOVATION_PREDICTOR_THERAPIST: "s_Tx",
    v.SD_LOG_INNOVATION_OUTCOME_THERAPIST: "s_Ty",
    v.TRAIT_INSTABILITY_EFFECT: "G",
    v.INDICATOR_LOADING_PREDICTOR: "λ^x_k",
    v.INDICATOR_INTERCEPT_PREDICTOR: "ν'^x_k",
    v.INDICATOR_SD_PREDICTOR: "θ^x_k",
    v.INDICATOR_LOADING_OUTCOME: "λ^y_k",
    v.INDICATOR_INTERCEPT_OUTCOME: "ν'^y_k",
    v.INDICATOR_SD_OUTCOME: "θ^y_k",
    v.MODERATOR_EFFECT: "λ",
    v.BASELINE_EFFECT_PREDICTOR: "a",
    v.BASELINE_EFFECT_OUTCOME: "c'",
    v.BASELINE_EFFECT_PREDICTOR_BETWEEN: "a_B",
    v.BASELINE_EFFECT_OUTCOME_BETWEEN: "c'_B",
    v.SAME_SESSION_EFFECT: "b_0",
    v.TREND_PREDICTOR: "γ_x",
    v.TREND_OUTCOME: "γ_y",
    v.SD_TREND_PREDICTOR: "τ_sx",
    v.SD_TREND_OUTCOME: "τ_sy",
    "first_sd_predictor": "σ_1x",
    "first_sd_outcome": "σ_1y",
    "first_corr": "ρ_1",
}


# How each default prior is scaled to the data (the numbers come from priors.default_priors).
def equations(spec: ModelSpec, predictor: str = "x", outcome: str = "y") -> str:
    """The fitted model's equations as plain text, following every option of ``spec``.

    Parameters
    ----------
    spec
        The model options.
    predictor, outcome
        Column names, named once in the first line (the equations use x and y).

    Returns
    -------
    str
        Lines for a preformatted block.
    """
    idx = "t,i" if spec.trend or spec.session_means else "i"
    lines = [
        *_decomposition_lines(spec, predictor, outcome, idx),
        *_trait_lines(spec, idx),
        "",
        *_state_lines(spec),
        # continuous time: the diffusion and the stationary first cell are in the state lines
        *(_innovation_lines(spec) if spec.time_model != "continuous" else []),
        *(_first_session_lines(spec) if spec.time_model != "continuous" else []),
        *_error_lines(spec),
        *_instability_lines(spec),
        *_indicator_lines(spec),
    ]
    return "\n".join(lines)


def _decomposition_lines(spec: ModelSpec, predictor: str, outcome: str, idx: str) -> list[str]:
    """The variables' names and the split of each score into latent mean and state (and
    measurement error)."""
    if spec.measurement_error:
        split = [
            "Observed score = latent mean (trait-like) + state (state-like) + measurement error:",
            f"  x_ti = M^x_{idx} + x^w_ti + ε^x_ti     y_ti = M^y_{idx} + y^w_ti + ε^y_ti",
        ]
    else:
        split = [
            "Observed score = latent mean (trait-like) + state (state-like):",
            f"  x_ti = M^x_{idx} + x^w_ti          y_ti = M^y_{idx} + y^w_ti",
        ]
    return [
        f"x = {predictor} (predictor), y = {outcome} (outcome); session t of patient i"
        + (", treated by therapist j" if spec.therapist_level else ""),
        "",
        *split,
        "",
        "Trait-like part (latent means, estimated with their uncertainty, never observed means):",
    ]


def _trait_lines(spec: ModelSpec, idx: str) -> list[str]:
    """The latent means: intercepts, therapist and patient parts, baseline paths, trends."""
    three = spec.therapist_level
    mu_x, mu_y = ("μ_x(t)", "μ_y(t)") if spec.session_means else ("μ_x", "μ_y")
    trend = (" + s^x_i (t - t_0)", " + s^y_i (t - t_0)") if spec.trend else ("", "")
    ax, ay = (" + a^x_j", " + a^y_j + β_T a^x_j") if three else ("", "")
    lines = [
        f"  M^x_{idx} = {mu_x}{ax} + b^x_i{trend[0]}",
        f"  M^y_{idx} = {mu_y}{ay} + b^y_i + β_P b^x_i{trend[1]}",
    ]
    top = spec.baseline and spec.baseline_level == v.THERAPIST
    if spec.splits_baseline():
        # A patient-level baseline of three-level data, split at the therapists: the within
        # part moves the patient parts (b is β_P), the therapist means the therapist parts.
        lines += [
            "  b^x_i = a g^W_i + e^x_i,  b^y_i = c' g^W_i + e^y_i   (indirect a β_P, direct c')",
            "  a^x_j = a_B g^B_j + u^x_j,  a^y_j = c'_B g^B_j + u^y_j   (indirect a_B β_T, "
            "direct c'_B)",
            f"  g^W_i = g_i - mean of g over therapist j's patients, g^B_j = that mean centred "
            f"over therapists ({', '.join(spec.baseline)})",
        ]
    elif spec.baseline and not top:
        # Between-level mediation: the patient parts carry the baseline's paths.
        lines += [
            "  b^x_i = a g_i + e^x_i,  b^y_i = c' g_i + e^y_i   (indirect a β_P, direct c')",
            f"  g_i: centred baseline ({', '.join(spec.baseline)});  e^x_i ~ N(0, σ_Px²),"
            "  e^y_i ~ N(0, σ_Py²)",
        ]
    else:
        lines.append("  b^x_i ~ N(0, σ_Px²),  b^y_i ~ N(0, σ_Py²)")
    if top:
        # A therapist-level baseline: the therapist parts carry the paths, b is β_T.
        lines += [
            "  a^x_j = a g_j + u^x_j,  a^y_j = c' g_j + u^y_j   (indirect a β_T, direct c')",
            f"  g_j: centred therapist baseline ({', '.join(spec.baseline)});"
            "  u^x_j ~ N(0, σ_Tx²),  u^y_j ~ N(0, σ_Ty²)",
        ]
    elif three:
        lines.append("  a^x_j ~ N(0, σ_Tx²),  a^y_j ~ N(0, σ_Ty²)")
    # Each level is estimated as a covariance; the regression form above is derived from it.
    lines.append(
        "  estimated as covariances: the two parts at a level have SDs (σ_Px, s_Py) and "
        "correlation r_P; β_P = r_P s_Py / σ_Px, σ_Py = s_Py √(1 - r_P²)"
        + ("; likewise (σ_Tx, s_Ty, r_T) between therapists" if three else "")
    )
    if three and v.THERAPIST in spec.random_slopes:
        lines.append(
            "  with therapist slopes c_j: (a^x_j, a^y_j + β_T a^x_j, c_j) one 3 x 3 covariance "
            "(correlations r_T, r_xc, r_yc; LKJ(1))"
        )
    if spec.session_means:
        lines.append("  μ_x(t), μ_y(t): one grand mean per session")
    if spec.trend:
        lines.append("  s^x_i ~ N(γ_x, τ_sx²),  s^y_i ~ N(γ_y, τ_sy²)   (t_0: first session)")
    return lines


def _state_lines(spec: ModelSpec) -> list[str]:
    """The states' equations: the lagged VAR(1), or the same-session path alone without lags."""
    if spec.time_model == "continuous":
        from bayes_alliance.report.continuous import state_lines

        return state_lines(spec, _slope_lines(spec))
    if spec.dynamics == "var1":
        return _var1_lines(spec)
    lines = ["State-like part (no lags: sessions are exchangeable within a patient):"]
    if spec.same_session == "outcome_to_predictor":
        lines += ["  x^w_ti = b_0 y^w_ti + e^x_ti", "  y^w_ti = e^y_ti"]
    elif spec.same_session == "predictor_to_outcome":
        lines += ["  x^w_ti = e^x_ti", "  y^w_ti = b_0 x^w_ti + e^y_ti"]
    else:
        lines += ["  x^w_ti = e^x_ti", "  y^w_ti = e^y_ti"]
    return lines


def _var1_lines(spec: ModelSpec) -> list[str]:
    """The within-person VAR(1) of the states, with the state effect's random parts."""
    lag0 = spec.same_session
    lines = ["State-like part (within-person VAR(1); t-1 is the previous session number):"]
    slope = "φ_yx,i" if spec.random_slopes or spec.moderators else "φ_yx"
    x_terms = "φ_xx x^w_t-1,i"
    if spec.bivariate and spec.reverse_lag:
        x_terms += " + φ_xy y^w_t-1,i"
    if lag0 == "outcome_to_predictor":
        x_terms += " + b_0 y^w_ti"
    y_terms = f"{slope} x^w_t-1,i + φ_yy y^w_t-1,i"
    if lag0 == "predictor_to_outcome":
        y_terms += " + b_0 x^w_ti"
    if spec.bivariate:
        lines.append(f"  x^w_ti = {x_terms} + e^x_ti")
    else:
        lines.append("  x^w_ti = e^x_ti   (single-equation model: no dynamics of x)")
    lines.append(f"  y^w_ti = {y_terms} + e^y_ti")
    return lines + _slope_lines(spec)


def _slope_lines(spec: ModelSpec) -> list[str]:
    """The patient's state effect φ_yx,i from random slopes and moderators (none without)."""
    if not (spec.random_slopes or spec.moderators):
        return []
    parts = ["φ_yx"]
    if v.THERAPIST in spec.random_slopes:
        parts.append("c_j")
    if v.PATIENT in spec.random_slopes:
        parts.append("d_i")
    if spec.moderators:
        parts.append("λ'z_i")
    lines = [f"  φ_yx,i = {' + '.join(parts)}"]
    if spec.moderators:
        lines.append(f"  z_i: centred moderators ({', '.join(spec.moderators)})")
    if v.THERAPIST in spec.random_slopes:
        lines.append("  c_j ~ N(0, τ_c²)" + _trunc(spec))
    if v.PATIENT in spec.random_slopes:
        lines.append("  d_i ~ N(0, τ_d²)" + _trunc(spec))
    return lines


def _innovation_lines(spec: ModelSpec) -> list[str]:
    """The innovations' covariance: diagonal with a same-session path or one equation."""
    sub = "t" if spec.innovations == "session" else ""
    sig = f"Σ_{sub}" if sub else "Σ"
    if spec.same_session != "none" or not spec.bivariate:
        lines = [f"  (e^x_ti, e^y_ti) ~ N(0, {sig}),  {sig} = diag(σ_x{sub}², σ_y{sub}²)"]
    else:
        lines = [
            f"  (e^x_ti, e^y_ti) ~ N(0, {sig}),  {sig} = [[σ_x{sub}², ρ{sub} σ_x{sub} σ_y{sub}], "
            f"[ρ{sub} σ_x{sub} σ_y{sub}, σ_y{sub}²]]"
        ]
    if spec.innovations == "session":
        lines.append("  one innovation covariance per session (as in the RI-CLPM)")
    return lines


def _first_session_lines(spec: ModelSpec) -> list[str]:
    """The first observed session's states: stationary or free (none without lags)."""
    if spec.dynamics != "var1":
        return []
    lines = ["", "First observed session of a patient (w = (x^w, y^w)):"]
    if spec.first_session == "stationary":
        lines.append("  w_first,i ~ N(0, S_i),  S_i = Φ*_i S_i Φ*_i' + Σ*  (stationary)")
        lines.append(
            "  Φ*, Σ*: reduced form of the lag matrix and innovations; the priors of the "
            "dynamics are truncated to stationary values"
        )
    else:
        lines.append("  w_first,i ~ N(0, Σ_1),  Σ_1 = [[σ_1x², ρ_1 σ_1x σ_1y], [., σ_1y²]] (free)")
    return lines


def _indicator_lines(spec: ModelSpec) -> list[str]:
    """The factor model of variables measured by several indicators."""
    out = []
    for var, cols in (("x", spec.predictor_indicators), ("y", spec.outcome_indicators)):
        if cols:
            out.append(
                f"  z^{var}_k,ti = ν^{var}_k + λ^{var}_k η^{var}_ti + e_k,ti,  "
                f"e_k ~ N(0, (θ^{var}_k)²); η^{var}: the latent score ({var}'s trait + state), "
                "marker λ = 1, ν = 0"
            )
    if not out:
        return []
    return ["", "Several indicators per session (one factor, equal loadings at both levels):", *out]


def _instability_lines(spec: ModelSpec) -> list[str]:
    """Patients' own innovation SDs and the traits' regression on them (random innovations)."""
    if not spec.random_innovations:
        return []
    therapist = " + s_Tx v_x,j" if "therapist" in spec.random_innovations else ""
    return [
        "",
        "Random innovation variances (patients who fluctuate more; Hamaker et al. 2018):",
        f"  σ_x,i = σ_x exp(s_Px u_x,i{therapist}),  likewise σ_y,i;  u, v ~ N(0, 1)",
        "  traits regress on the instability: (M_x,i, M_y,i)' = ... + G (u_x,i, u_y,i)' + e_i",
    ]


def _error_lines(spec: ModelSpec) -> list[str]:
    """The measurement errors of the observed scores (none without measurement error)."""
    if not spec.measurement_error:
        return []
    return [
        "",
        "Measurement error (white noise around the state; Schuurman & Hamaker 2019):",
        "  ε^x_ti ~ N(0, ω_x²),  ε^y_ti ~ N(0, ω_y²), independent of each other, of the",
        "  states and over sessions; within-person reliability of x: Var(x^w) / (Var(x^w) + ω_x²)",
    ]


def _trunc(spec: ModelSpec) -> str:
    """The note that a random slope's prior is truncated (a stationary first session), or ""."""
    return ", truncated to stationary slopes" if spec.first_session == "stationary" else ""


def symbols_table(spec: ModelSpec, predictor: str = "x", outcome: str = "y") -> pd.DataFrame:
    """Symbol, parameter name and meaning of each parameter the model estimates."""
    from bayes_alliance.report.labels import label_level
    from bayes_alliance.report.tables import parameter_label

    names = spec.prior_names()
    rows = [
        {
            "symbol": SYMBOLS.get(n, ""),
            "parameter": n,
            "meaning": parameter_label(n, predictor, outcome, spec.same_session, label_level(spec))
            if n in v.NAMED_PARAMETERS
            else _extra_meaning(n, predictor, outcome),
        }
        for n in names
    ]
    return pd.DataFrame(rows, columns=["symbol", "parameter", "meaning"]).set_index("symbol")


def _extra_meaning(name: str, x: str, y: str) -> str:
    var = x if name.endswith("predictor") else y
    return {
        "session_mean_predictor": f"grand mean of {x} per session",
        "session_mean_outcome": f"grand mean of {y} per session",
        "first_sd_predictor": f"SD of the first session's state of {var}",
        "first_sd_outcome": f"SD of the first session's state of {var}",
        "first_corr": "correlation of the first session's states",
    }.get(name, name)
