r"""The report's words and figure for a continuous-time fit (``ModelSpec.time_model =
"continuous"``, :mod:`bayes_alliance.model.continuous`): labels of the drift and diffusion
rows, the effects interval in the labels of the lag effects, the figure of ``Phi(dt)`` over
the interval and the methods sentence with the model's equations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bayes_alliance.core import vocab as v
from bayes_alliance.core.intervals import BAND_KIND, interval_bounds
from bayes_alliance.effects import continuous as ct_effects
from bayes_alliance.spec.model_spec import ModelSpec

# Rows whose size depends on the effects interval: the entries of Phi and what is derived
# from them.
AT_INTERVAL = (
    *ct_effects.INTERVAL_PARAMETERS,
    "standardised_state_effect",
    "standardised_reverse_state_effect",
    "long_run_state_effect",
    "long_run_reverse_state_effect",
    "long_run_state_effect_single_equation",
)
SLOPE_SDS = {v.SD_STATE_EFFECT_PATIENT: "patients", v.SD_STATE_EFFECT_THERAPIST: "therapists"}
REFERENCES = {
    "Oud & Jansen 2000": (
        "Oud, J. H. L., & Jansen, R. A. R. G. (2000). Continuous time state space modeling of "
        "panel data by means of SEM. Psychometrika, 65(2), 199-215."
    ),
    "Voelkle et al. 2012": (
        "Voelkle, M. C., Oud, J. H. L., Davidov, E., & Schmidt, P. (2012). An SEM approach to "
        "continuous time modeling of panel data: Relating authoritarianism and anomia. "
        "Psychological Methods, 17(2), 176-192."
    ),
    "Driver, Oud & Voelkle 2017": (
        "Driver, C. C., Oud, J. H. L., & Voelkle, M. C. (2017). Continuous time structural "
        "equation modeling with R package ctsem. Journal of Statistical Software, 77(5), 1-35."
    ),
}


def _unit(spec: ModelSpec) -> str:
    return spec.time_unit[:-1]  # "day", "week"


def state_lines(spec: ModelSpec, slope_lines: Sequence[str]) -> list[str]:
    """The equations block's state-like part in continuous time, in the style of the
    session-number VAR(1) (:func:`bayes_alliance.report.model_text.equations`);
    ``slope_lines``: the session-number block's lines of the patient's cross effect, whose
    ``φ_yx`` here is the drift's ``a_yx``."""
    u = _unit(spec)
    slope = "a_yx,i" if spec.random_slopes or spec.moderators else "a_yx"
    lines = [
        f"State-like part (continuous-time VAR(1) on the sessions' times t_ti, in {u}s):",
        "  dw_i(t) = A_i w_i(t) dt + G dW(t),   w = (x^w, y^w)'",
        f"  A_i = [[a_xx, a_xy], [{slope}, a_yy]],   G G' = [[g_x², r g_x g_y], [r g_x g_y, g_y²]]",
        "  at a session, with Δt_ti = t_ti - t_t-1,i (the patient's own interval):",
        "  w_ti = Φ_i(Δt_ti) w_t-1,i + u_ti,   Φ_i(Δt) = expm(A_i Δt)",
        "  u_ti ~ N(0, Q_i(Δt_ti)),   Q_i(Δt) = S_i - Φ_i(Δt) S_i Φ_i(Δt)'",
        "  A_i S_i + S_i A_i' + G G' = 0   (S_i: the stationary covariance)",
        "  w_1i ~ N(0, S_i)   (the first session from the stationary distribution)",
    ]
    return lines + [line.replace("φ_yx", "a_yx") for line in slope_lines]


def time_labels(
    names: Sequence[str], labels: Sequence[str], spec: ModelSpec, x: str, y: str
) -> list[str]:
    """The labels of a table's rows in continuous time: the drift rows with their time unit
    (``"..., per day"``), the lag effects with the effects interval (``"..., per 7 days"``);
    other rows and every row of a session-number fit unchanged."""
    if spec.time_model != "continuous":
        return list(labels)
    out = []
    for name, label in zip(names, labels, strict=True):
        if name in v.DRIFT_PARAMETERS:
            label = f"{label}, per {_unit(spec)}"
        elif name in SLOPE_SDS:  # random slopes vary the drift's cross effect
            label = f"SD of the drift's cross effect {x} → {y} between {SLOPE_SDS[name]}, per {_unit(spec)}"
        elif name in AT_INTERVAL:
            label = f"{label}, {ct_effects.interval_words(spec)}"
        elif name == "bayesian_r2":
            label = f"{label} (each session at its own interval since the previous one)"
        out.append(label)
    return out


def average_drift_words(spec: ModelSpec) -> str:
    """Which Phi the interval rows are, when the cross effect varies between patients."""
    if not (spec.random_slopes or spec.moderators):
        return ""
    return (
        " With cross effects that vary between patients, these rows are Phi at the fixed "
        "(average) drift, not the average of the patients' own Phi matrices (expm is not "
        "linear, so the two differ)."
    )


def r2_note(spec: ModelSpec) -> str:
    """Which interval each R-squared is at (empty for a session-number fit)."""
    if spec.time_model != "continuous":
        return ""
    return (
        "Continuous time: the within-person totals and the trait shares do not depend on the "
        "interval (the stationary covariance); the split of the within part into what the "
        "previous session predicts and the innovation is at the effects interval, "
        f"{ct_effects.interval_words(spec)}; the whole-model Bayesian R-squared uses each "
        "session's own interval since the patient's previous session."
    )


def phi_figure(
    post: Mapping[str, Any],
    spec: ModelSpec,
    x: str,
    y: str,
    max_interval: float | None = None,
    ci_prob: float = 0.9,
) -> Figure:
    """The entries of ``Phi(dt) = expm(A dt)`` over the interval dt: the posterior median of
    each and its equal-tailed ``ci_prob`` band (four panels: the two autoregressions and the
    two cross effects), with the effects interval marked. ``post``: posterior arrays (chain,
    draw) of the drift entries."""
    dt_fx = ct_effects.interval_of(spec)
    top = max_interval if max_interval is not None else 4.0 * dt_fx
    grid = np.linspace(0.0, top, 81)
    curves = ct_effects.phi_curve(post, grid)
    pct = f"{ci_prob * 100:.4g}%"
    titles = {
        v.STATE_EFFECT: f"{x} → {y} (state-like effect)",
        v.REVERSE_STATE_EFFECT: f"{y} → {x} (reverse path)",
        v.OUTCOME_AUTOREGRESSION: f"{y} on itself (autoregression)",
        v.PREDICTOR_AUTOREGRESSION: f"{x} on itself (autoregression)",
    }
    fig, axes = plt.subplots(2, 2, figsize=(7.5, 5.2), sharex=True)
    order = (
        v.PREDICTOR_AUTOREGRESSION,
        v.REVERSE_STATE_EFFECT,
        v.STATE_EFFECT,
        v.OUTCOME_AUTOREGRESSION,
    )
    for ax, name in zip(axes.ravel(), order, strict=True):
        draws = curves[name].reshape(-1, len(grid))
        lo, hi = interval_bounds(draws, ci_prob, BAND_KIND, axis=0)
        ax.fill_between(grid, lo, hi, color="#9ecae1", alpha=0.6, label=f"{pct} interval")
        ax.plot(grid, np.median(draws, axis=0), color="#08519c", lw=2, label="posterior median")
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(dt_fx, color="#d95f02", lw=1, ls="--", label=f"effects interval ({dt_fx:g})")
        ax.set_title(titles[name], fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel(f"interval ({spec.time_unit})")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle("Lagged effects by the time between sessions: entries of Phi(dt) = expm(A dt)")
    fig.tight_layout()
    return fig


def phi_caption(spec: ModelSpec, ci_prob: float = 0.9) -> str:
    """The figure's caption and the sentence with the effects interval."""
    pct = f"{ci_prob * 100:.4g}%"
    return (
        f"Posterior median and {pct} equal-tailed band of each entry of the lag matrix "
        "Phi(dt) over the time between two sessions. The lag effects in the tables are these "
        f"curves at the effects interval, {ct_effects.interval_words(spec)} "
        "(dashed line; by default the median interval between a patient's sessions): a lagged "
        "effect is an effect over a stated interval, and it differs at another."
        + average_drift_words(spec)
    )


def methods_sentence(spec: ModelSpec, x: str, y: str) -> str:
    """The continuous-time model for a methods paragraph, with its equations and citations
    (empty for a session-number fit)."""
    if spec.time_model != "continuous":
        return ""
    unit = spec.time_unit
    return (
        f"Time was the sessions' dates in {unit}: the state-like deviations w(t) of {x} and "
        f"{y} follow a continuous-time first-order vector autoregression, dw = A w dt + G dW, "
        "with drift matrix A and diffusion covariance Q = GG' (Oud & Jansen 2000; Voelkle et "
        "al. 2012; Driver, Oud & Voelkle 2017). Between two sessions dt apart, w(t + dt) = "
        "Phi(dt) w(t) + u with Phi(dt) = expm(A dt) and u ~ N(0, S - Phi(dt) S Phi(dt)'), "
        "S the stationary covariance (A S + S A' + Q = 0), exact for every patient's own "
        "intervals; the first session is drawn from S, and both eigenvalues of A have "
        "negative real parts. Lagged effects are the entries of Phi at "
        f"{ct_effects.interval_of(spec):g} {unit} (the effects interval), beside the drift "
        f"entries per {_unit(spec)}.{average_drift_words(spec)} {r2_note(spec)}"
    )


def references(spec: ModelSpec | None) -> list[str]:
    """The full references the continuous-time sentence cites (none for session numbers)."""
    if spec is None or spec.time_model != "continuous":
        return []
    return list(REFERENCES.values())


__all__ = [
    "AT_INTERVAL",
    "methods_sentence",
    "phi_caption",
    "phi_figure",
    "references",
    "time_labels",
]
