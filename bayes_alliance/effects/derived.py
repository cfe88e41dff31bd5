r"""Effect sizes per posterior draw: R-squared per variance component, standardised and long-run
effects, stationarity, ICCs (docs/methods.md, sections 'Derived effects' and
'R-squared per variance component').

Everything is computed from the model's own latent moments, draw by draw, never from sample
variances of observed means. Within-person moments are expectations over the distribution of
the state slopes (random slopes and moderators; :mod:`bayes_alliance.effects.variance`). Functions take
a dict of posterior arrays (each shaped (chain, draw) or (chain, draw, k)) and the data's
:class:`~bayes_alliance.effects.variance.Design`, so they are testable without sampling.

Outcome equation (three levels; Rights & Sterba 2023), predictors centred within their cluster:

* f1: the fixed within part: state effect (plus moderator interactions), outcome
  autoregression and a same-session x_t when present, ``E_i[g_f,i' Phi_i g_f,i]``;
* v13, v12: therapist and patient variation of the state effect (see ``variance``);
* f2 = trait_effect_patient^2 Var(b_x); f3 = trait_effect_therapist^2 Var(a_x); v23 = 0;
* m2 = sd_patient_outcome^2, m3 = sd_therapist_outcome^2; sigma2 = innovation_sd_outcome^2;
* c2, c3: the parts of f2 and f3 (of both equations) that covariates adjusting the latent means
  explain, ``g' S g`` at their level (:func:`covariate_variances`); parts, not components;
* time: the spread of session-specific means or of trends over the data's sessions, in the
  total only (it belongs to no level).

The predictor equation mirrors it (its coefficients do not vary; no trait predictors). Two-level
models use f1, f2, v, m. f1 + v12 + v13 + sigma2 is the model-implied within variance of the
states.

With measurement error (``spec.measurement_error``; observed = latent mean + state + error,
error ~ N(0, omega^2), :mod:`bayes_alliance.effects.measurement`) the observed score's level-1
residual is the innovation sigma2 plus the error omega2 = measurement_error_sd^2, a component of
its own (``omega2``) in the level-1 (within) and total denominators; f1 + v12 + v13 + sigma2 +
omega2 is then the observed within variance. Without measurement error there is no ``omega2``
and every result is as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.core.intervals import BAND_KIND, DEFAULT_CI_PROB, interval_bounds

# The baseline's mediation effects and variance shares live in effects.baseline; re-exported
# here, where the report, the simulator and the tests have always found them.
from bayes_alliance.effects.baseline import (
    MEDIATION_BETWEEN,  # noqa: F401
    MEDIATION_BETWEEN_THERAPIST,  # noqa: F401
    baseline_shares,
    baseline_variances,  # noqa: F401
    mediation_between,
    mediation_names,  # noqa: F401
)
from bayes_alliance.effects.measurement import error_variances, observed_within, reliabilities
from bayes_alliance.effects.variance import Design, within_moments
from bayes_alliance.kernels import dynamics, moments, r2
from bayes_alliance.model.structure import value
from bayes_alliance.model.variability import INSTABILITY_SD, average_innovations
from bayes_alliance.spec.model_spec import ModelSpec

Draws = Mapping[str, np.ndarray]
v = vocab


def _time_variance(post: Draws, spec: ModelSpec, design: Design, var: str) -> np.ndarray | None:
    """Variance over the data's in-series cells of the session means or of the trend part."""
    w = design.cells.sum(axis=0)
    w = w / w.sum()
    if spec.session_means:
        mu = np.asarray(post[f"session_mean_{var}"], dtype=float)
        centred = mu - (mu * w).sum(-1, keepdims=True)
        return (centred**2 * w).sum(-1)
    if spec.trend:
        t = design.offsets
        mean_t = (w * t).sum()
        var_t = (w * (t - mean_t) ** 2).sum()
        like = np.asarray(post[v.INTERCEPT_OUTCOME], dtype=float)
        gamma = value(post, f"trend_{var}", like)
        tau = value(post, f"sd_trend_{var}", like)
        return gamma**2 * var_t + tau**2 * (w * t**2).sum()
    return None


def covariate_variances(
    post: Draws, design: Design, like: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r"""Variance of the latent means explained by the adjusting covariates at each level, per
    draw: for the columns at that level

    .. math::

        c_x = g_x' S g_x, \qquad c_y = g_y' S g_y,

    with S their covariance over the units of the level (each patient, or each therapist,
    once) and g_x, g_y their effects on the latent means (``covariate_effect_*``, total
    effects: the trait effect is not added, unlike a baseline's b a). They add to the latent
    means' variances at their level: to f2 (patients) or f3 (therapists) in R-squared, to
    the ICCs and to the trait SDs of the standardised trait effects. Cross terms with a
    baseline's share are not counted (exact when the two are uncorrelated). Zeros at a
    level without covariates."""
    zero = np.zeros_like(like)
    out = {v.PATIENT: (zero, zero), v.THERAPIST: (zero, zero)}
    if v.COVARIATE_EFFECT_PREDICTOR not in post:  # e.g. a simulator's truth without them
        return out
    levels = np.array(design.covariate_levels)
    for level, z in design.covariates.items():
        cov = z.T @ z / len(z)
        at = np.flatnonzero(levels == level)
        gx = np.asarray(post[v.COVARIATE_EFFECT_PREDICTOR], dtype=float)[..., at]
        gy = np.asarray(post[v.COVARIATE_EFFECT_OUTCOME], dtype=float)[..., at]
        out[level] = (
            np.einsum("...k,kl,...l->...", gx, cov, gx),
            np.einsum("...k,kl,...l->...", gy, cov, gy),
        )
    return out


def r2_components(
    post: Draws, spec: ModelSpec, design: Design, within: dict[str, np.ndarray] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Variance components per draw for each equation (``outcome``, ``predictor``).

    Parameters
    ----------
    post
        Posterior arrays by name (chain, draw[, k]).
    spec
        The fitted model's options.
    design
        What the data contribute (moderator values, caseloads, sessions).
    within
        :func:`bayes_alliance.effects.variance.within_moments` of ``post``, when already computed.

    Returns
    -------
    dict
        ``{"outcome": {component: array}, "predictor": {...}}``; three-level components when the
        spec has a therapist level, else two-level (f1, f2, v, m, sigma2); plus ``omega2``
        with measurement error and ``time`` with session means or trends.
    """
    wm = within if within is not None else within_moments(post, spec, design)
    like = wm["f1_y"]
    var_bx = value(post, v.SD_PATIENT_PREDICTOR, like) ** 2
    var_ax = value(post, v.SD_THERAPIST_PREDICTOR, like) ** 2
    zero = np.zeros_like(like)
    errors = error_variances(post, spec, like)
    # A baseline's share of the latent means is a fixed part of both at its level: f2 between
    # patients, f3 between therapists.
    gx2, gy2, gx3, gy3 = baseline_shares(post, design, like)
    # Adjusting covariates: a fixed part at their level too, reported as c2 / c3 beside it.
    cov = covariate_variances(post, design, like)
    (cx2, cy2), (cx3, cy3) = cov[v.PATIENT], cov[v.THERAPIST]
    gx2, gy2, gx3, gy3 = gx2 + cx2, gy2 + cy2, gx3 + cx3, gy3 + cy3
    eqs = {
        v.OUTCOME: {
            "f1": wm["f1_y"],
            "f2": value(post, v.TRAIT_EFFECT_PATIENT, like) ** 2 * var_bx + gy2,
            "f3": value(post, v.TRAIT_EFFECT_THERAPIST, like) ** 2 * var_ax + gy3,
            "v12": wm["v12_y"],
            "v13": wm["v13_y"],
            "m2": value(post, v.SD_PATIENT_OUTCOME, like) ** 2,
            "m3": value(post, v.SD_THERAPIST_OUTCOME, like) ** 2,
            "sigma2": wm["sigma2_y"],
        },
        v.PREDICTOR: {
            "f1": wm["f1_x"],
            "f2": gx2,
            "f3": gx3,
            "v12": zero,
            "v13": zero,
            "m2": var_bx,
            "m3": var_ax,
            "sigma2": wm["sigma2_x"],
        },
    }
    out: dict[str, dict[str, np.ndarray]] = {}
    for eq, c in eqs.items():
        if spec.therapist_level:
            out[eq] = {**c, "v23": zero}
            out[eq] = {k: out[eq][k] for k in r2.THREE_LEVEL_COMPONENTS}
        else:
            out[eq] = {
                "f1": c["f1"],
                "f2": c["f2"],
                "v": c["v12"] + c["v13"],
                "m": c["m2"],
                "sigma2": c["sigma2"],
            }
        if errors is not None:  # a second level-1 residual of the observed score
            out[eq][r2.ERROR] = errors[eq]
        y = eq == v.OUTCOME
        parts = {v.PATIENT: cy2 if y else cx2, v.THERAPIST: cy3 if y else cx3}
        names = {v.PATIENT: "c2", v.THERAPIST: "c3"} if spec.therapist_level else {v.PATIENT: "c"}
        for level, name in names.items():
            if level in design.covariates:
                out[eq][name] = parts[level]
        time = _time_variance(post, spec, design, eq)
        if time is not None:
            out[eq][r2.TIME] = time
    return out


def r2_dataset(components: dict[str, dict[str, np.ndarray]], three_level: bool) -> xr.Dataset:
    """R-squared measures per draw as a Dataset with dims (chain, draw, component) per
    (equation, denominator) variable named ``<equation>_<denominator>``."""
    fn = r2.three_level_r2 if three_level else r2.two_level_r2
    data_vars: dict[str, Any] = {}
    for eq, comp in components.items():
        measures = fn(comp)
        for denom in dict.fromkeys(d for d, _ in measures):
            names = [m for d, m in measures if d == denom]
            arr = np.stack([measures[(denom, m)] for m in names], -1)
            data_vars[f"{eq}_{denom}"] = xr.DataArray(
                arr,
                dims=("chain", "draw", f"component_{eq}_{denom}"),
                coords={f"component_{eq}_{denom}": names},
            )
    return xr.Dataset(data_vars)


def r2_summary(ds: xr.Dataset, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
    """Tidy table: equation, denominator, component, label, mean, ci_low, ci_high
    (equal-tailed interval of probability ``ci_prob``)."""
    rows = []
    for name, da in ds.data_vars.items():
        eq, denom = str(name).split("_", 1)
        dim = da.dims[-1]
        for comp in da[dim].values:
            x = da.sel({dim: comp}).values.ravel()
            bad = int((~np.isfinite(x)).sum())
            if bad:
                warnings.warn(
                    f"R-squared {eq}/{denom}/{comp}: {bad} of {x.size} draws are not finite and "
                    "are left out of the summary",
                    RuntimeWarning,
                    stacklevel=2,
                )
            x = x[np.isfinite(x)]
            lo, hi = interval_bounds(x, ci_prob, BAND_KIND) if x.size else (np.nan, np.nan)
            rows.append(
                {
                    v.EQUATION: eq,
                    "denominator": denom,
                    v.COMPONENT: str(comp),
                    "label": r2.LABELS.get(str(comp), str(comp)),
                    "mean": float(x.mean()) if x.size else np.nan,
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                }
            )
    return pd.DataFrame(
        rows,
        columns=["equation", "denominator", v.COMPONENT, "label", "mean", "ci_low", "ci_high"],
    )


def structural(post: Draws) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The average structural lag matrix entries (a, b, c, d) and the lag-0 coefficient."""
    like = np.asarray(post[v.OUTCOME_AUTOREGRESSION], dtype=float)
    phi = tuple(
        value(post, n, like)
        for n in (
            v.PREDICTOR_AUTOREGRESSION,
            v.REVERSE_STATE_EFFECT,
            v.STATE_EFFECT,
            v.OUTCOME_AUTOREGRESSION,
        )
    )
    return phi, value(post, v.SAME_SESSION_EFFECT, like)


def derived_effects(
    post: Draws, spec: ModelSpec, design: Design, within: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Standardised and long-run effects, stationarity, ICCs and, with a baseline, the
    between-level mediation effects (:func:`mediation_between`) per draw.

    Standardised within effects use the model-implied within SDs over the slope distribution
    (Schuurman et al. 2016): ``state_effect * sqrt(Var_w(x) / Var_w(y))``. Standardised trait
    effects use the trait SDs at their level. ``long_run_state_effect`` (and the reverse one)
    are entries of ``(B0 - Phi)^-1`` at the average dynamics (Falkenstroem 2024; B0 carries a
    same-session path): the response of y to a sustained unit shift in the predictor's equation,
    which also moves the predictor itself. ``long_run_state_effect_single_equation`` is the
    response of y per unit of sustained change in the predictor,
    ``(state_effect + b0) / (1 - outcome_autoregression)`` (b0 only for a path x_t -> y_t). ``stationary`` (the posterior probability that the average
    dynamics are stationary) is given only with a free first session: with a stationary first
    session stationarity is imposed by the model (:mod:`bayes_alliance.model.within`).

    With measurement error (:mod:`bayes_alliance.effects.measurement`) the standardised within
    effects stay in SD units of the error-free states (the effects act between states), the
    ICCs are shares of the observed scores' variance (their session-level share holds the state
    and the error variance), and ``reliability_predictor`` / ``reliability_outcome`` give the
    within-person reliability Var_w(state) / (Var_w(state) + omega^2) per draw.
    """
    wm = within if within is not None else within_moments(post, spec, design)
    like = wm["var_y"]
    sd_wx, sd_wy = np.sqrt(wm["var_x"]), np.sqrt(wm["var_y"])
    # Variances of the latent means at each level: the residual deviations, for y the trait
    # effect's share, and at the baseline's level its share (zero without one).
    gx2, gy2, gx3, gy3 = baseline_shares(post, design, like)
    cov = covariate_variances(post, design, like)  # adjusting covariates' shares, by level
    gx2, gy2 = gx2 + cov[v.PATIENT][0], gy2 + cov[v.PATIENT][1]
    gx3, gy3 = gx3 + cov[v.THERAPIST][0], gy3 + cov[v.THERAPIST][1]
    beta_p = value(post, v.TRAIT_EFFECT_PATIENT, like)
    var_ex = value(post, v.SD_PATIENT_PREDICTOR, like) ** 2
    var_bx = var_ex + gx2
    var_by = value(post, v.SD_PATIENT_OUTCOME, like) ** 2 + beta_p**2 * var_ex + gy2
    out: dict[str, np.ndarray] = {}
    if spec.dynamics == "var1":
        phi, b0 = structural(post)
        out["standardised_state_effect"] = phi[2] * sd_wx / sd_wy
        if v.REVERSE_STATE_EFFECT in post:
            out["standardised_reverse_state_effect"] = phi[1] * sd_wy / sd_wx
        lr = dynamics.long_run(phi, b0, spec.same_session)
        out["long_run_state_effect"] = lr[2]
        if v.REVERSE_STATE_EFFECT in post or spec.same_session == "outcome_to_predictor":
            out["long_run_reverse_state_effect"] = lr[1]
        lag0 = b0 if spec.same_session == "predictor_to_outcome" else 0.0
        out["long_run_state_effect_single_equation"] = (phi[2] + lag0) / (1 - phi[3])
        if spec.first_session == "free":
            phi_r, _ = dynamics.reduced_form(phi, (like, like, like), b0, spec.same_session)
            out["stationary"] = np.asarray(dynamics.is_stationary(phi_r), dtype=float)
    if v.SAME_SESSION_EFFECT in post:
        out["standardised_same_session_effect"] = post[v.SAME_SESSION_EFFECT] * (
            sd_wy / sd_wx if spec.same_session == "outcome_to_predictor" else sd_wx / sd_wy
        )
    out["standardised_trait_effect_patient"] = beta_p * np.sqrt(var_bx / var_by)
    levels = {"patient": (var_bx, var_by)}
    if spec.therapist_level:
        var_ux = value(post, v.SD_THERAPIST_PREDICTOR, like) ** 2
        beta_t = value(post, v.TRAIT_EFFECT_THERAPIST, like)
        var_ax = var_ux + gx3
        var_ay = value(post, v.SD_THERAPIST_OUTCOME, like) ** 2 + beta_t**2 * var_ux + gy3
        out["standardised_trait_effect_therapist"] = beta_t * np.sqrt(var_ax / var_ay)
        levels["therapist"] = (var_ax, var_ay)
    # ICCs of the observed scores: their within variance carries the error (the states' alone
    # without measurement error).
    obs_within = observed_within(wm, error_variances(post, spec, like))
    for k, var in ((0, "predictor"), (1, "outcome")):
        shares = moments.icc({lvl: pair[k] for lvl, pair in levels.items()}, obs_within[k])
        for lvl, share in shares.items():
            out[f"icc_{var}_{lvl}"] = share
    if spec.baseline:
        split = design.baseline_between is not None
        out.update(mediation_between(post, design.baseline_level, split))
    out.update(reliabilities(post, spec, wm))
    return out


def posterior_arrays(posterior: xr.Dataset, names: list[str]) -> dict[str, np.ndarray]:
    """Arrays (chain, draw[, k]) of the named variables that the posterior has."""
    return {n: np.asarray(posterior[n].values) for n in names if n in posterior}


def bayesian_r2(
    post: xr.Dataset, y: np.ndarray, spec: ModelSpec, offsets: np.ndarray | None = None
) -> np.ndarray:
    """Whole-model Bayesian R-squared of the outcome equation per draw (Gelman, Goodrich, Gabry
    & Vehtari 2019): var(fit) / (var(fit) + sigma^2), over observed cells with a previous session.

    The fit is the outcome equation's systematic part given the latent mean and the states
    (:func:`bayes_alliance.kernels.dynamics.outcome_mean`, with each patient's structural slope); sigma^2
    is the outcome's structural innovation variance (averaged over sessions when it is
    session-specific). Needs the stored states.

    The R-squared is of the observed outcome. With measurement error (observed = latent mean +
    state + error) its residual variance is sigma^2 + omega_y^2, and the latent-mean surface is
    no longer observed minus state (that keeps the error): it is built from the drawn latent
    means ``trait_outcome`` (plus the session means' deviations from their average, or each
    patient's trend times ``offsets``, the session offsets ``t - t_0`` of the grid's columns,
    :attr:`~bayes_alliance.effects.variance.Design.offsets`; with a trend and without them
    the draws are NaN, with a warning).
    """
    if "state_outcome" not in post or spec.dynamics != "var1":
        raise ValueError(
            "Bayesian R-squared needs a model with dynamics and stored states (store_states=True)"
        )
    obs = ~np.isnan(y)
    out = []
    for c in range(post.sizes["chain"]):
        one = post.isel(chain=c)
        wx = one["state_predictor"].values  # (draw, P, S)
        wy = one["state_outcome"].values
        if spec.measurement_error:
            m_y = _mean_surface(one, spec, y.shape, offsets)
        else:
            m_y = y[None] - wy  # the latent mean surface where y is observed
        slope = (
            one["state_effect_by_patient"].values[..., None]
            if "state_effect_by_patient" in one
            else one[v.STATE_EFFECT].values[:, None, None]
        )
        d = one[v.OUTCOME_AUTOREGRESSION].values[:, None, None]
        b0 = (
            one[v.SAME_SESSION_EFFECT].values[:, None, None]
            if v.SAME_SESSION_EFFECT in one
            else 0.0
        )
        fit = m_y[..., 1:] + dynamics.outcome_mean(
            slope, d, wx[..., :-1], wy[..., :-1], b0, spec.same_session, wx[..., 1:]
        )
        valid = obs[:, 1:][None] & np.isfinite(fit)
        f = np.where(valid, fit, np.nan)
        with warnings.catch_warnings():  # all-NaN fits (said once by _mean_surface)
            warnings.filterwarnings("ignore", "Degrees of freedom", RuntimeWarning)
            var_fit = np.nanvar(f.reshape(f.shape[0], -1), axis=1, ddof=1)
        s_y = one[v.INNOVATION_SD_OUTCOME].values
        if spec.random_innovations:  # the patients' average innovation variance
            needed = [v.INNOVATION_SD_PREDICTOR, v.INNOVATION_SD_OUTCOME]
            needed += [n for level in spec.random_innovations for n in INSTABILITY_SD[level]]
            averaged, _ = average_innovations({n: one[n].values for n in needed}, spec)
            s_y = averaged[v.INNOVATION_SD_OUTCOME]
        sigma2 = (s_y**2).mean(axis=-1) if s_y.ndim == 2 else s_y**2
        if spec.measurement_error:  # the observed outcome's second residual
            sigma2 = sigma2 + one[v.MEASUREMENT_ERROR_SD_OUTCOME].values ** 2
        out.append(var_fit / (var_fit + sigma2))
    return np.stack(out)


def _mean_surface(
    one: xr.Dataset, spec: ModelSpec, shape: tuple[int, ...], offsets: np.ndarray | None
) -> np.ndarray:
    """The outcome's latent-mean surface (draw, patient, session) of one chain from the drawn
    latent means (which carry the baseline's shift): plus the session means' deviations from
    their average, or plus each patient's trend times the session offset."""
    if "trait_outcome" not in one:
        raise ValueError("Bayesian R-squared with measurement error needs the drawn latent means")
    trait = one["trait_outcome"].values[..., None]  # (draw, P, 1)
    surface = np.broadcast_to(trait, (*trait.shape[:-1], shape[-1]))
    if spec.session_means:
        mu = one["session_mean_outcome"].values  # (draw, S)
        surface = surface + (mu - mu.mean(axis=-1, keepdims=True))[:, None, :]
    if spec.trend:
        if offsets is None:  # no trend part to add: say so rather than fail a whole table
            warnings.warn(
                "Bayesian R-squared with measurement error and a trend needs the session "
                "offsets (offsets=Design.offsets); it is left out (not finite)",
                RuntimeWarning,
                stacklevel=3,
            )
            return np.full((trait.shape[0], *shape), np.nan)
        slope = one[v.TREND_OUTCOME].values[:, None] + (
            one[v.SD_TREND_OUTCOME].values[:, None] * one["trend_outcome_raw"].values
        )
        surface = surface + slope[..., None] * np.asarray(offsets, dtype=float)
    return np.asarray(surface)
