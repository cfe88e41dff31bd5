r"""Effect sizes per posterior draw: R-squared per variance component, standardised and long-run
effects, stationarity, ICCs (METHODS.md sections 4 and 5).

Everything is computed from the model's own latent moments, draw by draw: the stationary
within covariance S of the VAR(1) (``S = Phi* S Phi*' + Sigma*``) and the latent trait
variances, never from sample variances of observed means. Functions take a dict of posterior
arrays (each shaped (chain, draw) or (chain, draw, k)) so they are testable without sampling.

Outcome equation (three levels; Rights & Sterba 2023), predictors centred within their cluster:

* f1: within part ``g' Cov(p) g`` with p = (xw_(t-1), yw_(t-1)) and g = (state_effect,
  outcome_autoregression), plus a same-session x_t and moderator interactions when present;
* f2 = trait_effect_patient^2 Var(b_x); f3 = trait_effect_therapist^2 Var(a_x);
* v12 = sd_state_effect_patient^2 S_xx; v13 = sd_state_effect_therapist^2 S_xx; v23 = 0;
* m2 = sd_patient_outcome^2, m3 = sd_therapist_outcome^2; sigma2 = innovation_sd_outcome^2.

The predictor equation mirrors it (no trait predictors). Two-level models use f1, f2, v, m.
Trends and session-specific means are not part of the decomposition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_alliance import moments, r2, vocab
from bayes_alliance.model import stationary_entries
from bayes_alliance.spec import ModelSpec

Draws = Mapping[str, np.ndarray]
v = vocab


def _get(post: Draws, name: str, like: np.ndarray) -> np.ndarray:
    return np.asarray(post[name], dtype=float) if name in post else np.zeros_like(like)


def reduced_form(post: Draws, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Per-draw reduced-form dynamics at the average state effect: Phi* (..., 2, 2), Sigma*
    (..., 2, 2), stationary S, and the structural lag-0 coefficient ``b0`` (0 without one)."""
    like = np.asarray(post[v.INNOVATION_SD_OUTCOME], dtype=float)
    a = _get(post, v.PREDICTOR_AUTOREGRESSION, like)
    b = _get(post, v.REVERSE_STATE_EFFECT, like)
    c = _get(post, v.STATE_EFFECT, like)
    d = _get(post, v.OUTCOME_AUTOREGRESSION, like)
    sx = np.asarray(post[v.INNOVATION_SD_PREDICTOR], dtype=float)
    sy = like
    rho = _get(post, v.INNOVATION_CORR, like)
    s11, s22, s12 = sx**2, sy**2, rho * sx * sy
    b0 = _get(post, v.SAME_SESSION_EFFECT, like)
    if spec.same_session == "predictor_to_outcome":
        c, d = c + b0 * a, d + b0 * b
        s12, s22 = b0 * s11, s22 + b0**2 * s11
    elif spec.same_session == "outcome_to_predictor":
        a, b = a + b0 * c, b + b0 * d
        s11, s12 = s11 + b0**2 * s22, b0 * s22
    f11, f12, f22 = stationary_entries(a, b, c, d, s11, s12, s22)
    phi = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
    sig = np.stack([np.stack([s11, s12], -1), np.stack([s12, s22], -1)], -2)
    s = np.stack([np.stack([f11, f12], -1), np.stack([f12, f22], -1)], -2)
    return {"phi": phi, "sigma": sig, "S": s, "b0": b0}


def _within_design(rf: dict[str, np.ndarray], lag0_on: int | None) -> np.ndarray:
    """Covariance of (xw_(t-1), yw_(t-1)) plus, when ``lag0_on`` is 0 (x_t) or 1 (y_t), that
    same-session state: Cov(w_t, w_(t-1)) = Phi* S."""
    s = rf["S"]
    if lag0_on is None:
        return s
    cross = np.einsum("...ij,...jk->...ik", rf["phi"], s)[..., lag0_on, :]  # Cov(w_t[k], w_(t-1))
    top = np.concatenate([s, cross[..., :, None]], axis=-1)
    bottom = np.concatenate([cross, s[..., lag0_on, lag0_on][..., None]], axis=-1)[..., None, :]
    return np.concatenate([top, bottom], axis=-2)


def r2_components(
    post: Draws, spec: ModelSpec, moderator_cov: np.ndarray | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """Variance components per draw for each equation (``outcome``, ``predictor``).

    Parameters
    ----------
    post
        Posterior arrays by name (chain, draw).
    spec
        The fitted model's options.
    moderator_cov
        Covariance matrix of the (centred) moderators across patients, when the spec has any.

    Returns
    -------
    dict
        ``{"outcome": {component: array}, "predictor": {...}}``; three-level components when the
        spec has a therapist level, else two-level (f1, f2, v, m, sigma2).
    """
    rf = reduced_form(post, spec)
    s = rf["S"]
    like = np.asarray(post[v.INNOVATION_SD_OUTCOME], dtype=float)
    var_bx = _get(post, v.SD_PATIENT_PREDICTOR, like) ** 2
    var_ax = _get(post, v.SD_THERAPIST_PREDICTOR, like) ** 2
    sxx = s[..., 0, 0]
    out: dict[str, dict[str, np.ndarray]] = {}
    for eq in (v.OUTCOME, v.PREDICTOR):
        if eq == v.OUTCOME:
            g = [_get(post, v.STATE_EFFECT, like), _get(post, v.OUTCOME_AUTOREGRESSION, like)]
            lag0 = 0 if spec.same_session == "predictor_to_outcome" else None
            f2 = _get(post, v.TRAIT_EFFECT_PATIENT, like) ** 2 * var_bx
            f3 = _get(post, v.TRAIT_EFFECT_THERAPIST, like) ** 2 * var_ax
            v12 = _get(post, v.SD_STATE_EFFECT_PATIENT, like) ** 2 * sxx
            v13 = _get(post, v.SD_STATE_EFFECT_THERAPIST, like) ** 2 * sxx
            m2 = _get(post, v.SD_PATIENT_OUTCOME, like) ** 2
            m3 = _get(post, v.SD_THERAPIST_OUTCOME, like) ** 2
            sigma2 = like**2
        else:
            g = [
                _get(post, v.PREDICTOR_AUTOREGRESSION, like),
                _get(post, v.REVERSE_STATE_EFFECT, like),
            ]
            lag0 = 1 if spec.same_session == "outcome_to_predictor" else None
            f2 = f3 = v12 = v13 = np.zeros_like(like)
            m2, m3 = var_bx, var_ax
            sigma2 = np.asarray(post[v.INNOVATION_SD_PREDICTOR], dtype=float) ** 2
        if lag0 is not None:
            g.append(_get(post, v.SAME_SESSION_EFFECT, like))
        gamma = np.stack(g, -1)
        f1 = np.einsum("...i,...ij,...j->...", gamma, _within_design(rf, lag0), gamma)
        if eq == v.OUTCOME and spec.moderators and moderator_cov is not None:
            lam = np.asarray(post[v.MODERATOR_EFFECT], dtype=float)
            f1 = f1 + np.einsum("...i,ij,...j->...", lam, moderator_cov, lam) * sxx
        if spec.therapist_level:
            out[eq] = {
                "f1": f1,
                "f2": f2,
                "f3": f3,
                "v12": v12,
                "v13": v13,
                "v23": np.zeros_like(f1),
                "m2": m2,
                "m3": m3,
                "sigma2": sigma2,
            }
        else:
            out[eq] = {"f1": f1, "f2": f2, "v": v12, "m": m2, "sigma2": sigma2}
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


def r2_summary(ds: xr.Dataset, ci_prob: float = 0.94) -> pd.DataFrame:
    """Tidy table: equation, denominator, component, mean, ci_low, ci_high (equal-tailed)."""
    rows = []
    lo_q, hi_q = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    for name, da in ds.data_vars.items():
        eq, denom = str(name).split("_", 1)
        dim = da.dims[-1]
        for comp in da[dim].values:
            x = da.sel({dim: comp}).values.ravel()
            x = x[np.isfinite(x)]
            rows.append(
                {
                    "equation": eq,
                    "denominator": denom,
                    "component": str(comp),
                    "mean": float(x.mean()) if x.size else np.nan,
                    "ci_low": float(np.quantile(x, lo_q)) if x.size else np.nan,
                    "ci_high": float(np.quantile(x, hi_q)) if x.size else np.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["equation", "denominator", "component", "mean", "ci_low", "ci_high"]
    )


def derived_effects(post: Draws, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Standardised and long-run effects, stationarity indicator and ICCs per draw.

    Standardised within effects use the model-implied within SDs (Schuurman et al. 2016):
    ``state_effect * sqrt(S_xx / S_yy)``. Standardised trait effects use the trait SDs at their
    level. Long-run effects are entries of (I - Phi)^-1 (Falkenstroem 2024) and, for the outcome
    alone, ``state_effect / (1 - outcome_autoregression)``.
    """
    rf = reduced_form(post, spec)
    s = rf["S"]
    like = np.asarray(post[v.INNOVATION_SD_OUTCOME], dtype=float)
    sd_wx, sd_wy = np.sqrt(s[..., 0, 0]), np.sqrt(s[..., 1, 1])
    var_bx = _get(post, v.SD_PATIENT_PREDICTOR, like) ** 2
    beta_p = _get(post, v.TRAIT_EFFECT_PATIENT, like)
    var_by = _get(post, v.SD_PATIENT_OUTCOME, like) ** 2 + beta_p**2 * var_bx
    out: dict[str, np.ndarray] = {}
    if spec.dynamics == "var1":
        out["standardised_state_effect"] = _get(post, v.STATE_EFFECT, like) * sd_wx / sd_wy
        if v.REVERSE_STATE_EFFECT in post:
            out["standardised_reverse_state_effect"] = post[v.REVERSE_STATE_EFFECT] * sd_wy / sd_wx
        phi = np.stack(
            [
                np.stack(
                    [
                        _get(post, v.PREDICTOR_AUTOREGRESSION, like),
                        _get(post, v.REVERSE_STATE_EFFECT, like),
                    ],
                    -1,
                ),
                np.stack(
                    [_get(post, v.STATE_EFFECT, like), _get(post, v.OUTCOME_AUTOREGRESSION, like)],
                    -1,
                ),
            ],
            -2,
        )
        lr = moments.long_run_matrix(phi)
        out["long_run_state_effect"] = lr[..., 1, 0]
        out["long_run_reverse_state_effect"] = lr[..., 0, 1]
        out["long_run_state_effect_single_equation"] = _get(post, v.STATE_EFFECT, like) / (
            1 - _get(post, v.OUTCOME_AUTOREGRESSION, like)
        )
        out["stationary"] = moments.is_stationary(rf["phi"]).astype(float)
    if v.SAME_SESSION_EFFECT in post:
        out["standardised_same_session_effect"] = post[v.SAME_SESSION_EFFECT] * (
            sd_wx / sd_wy if spec.same_session == "predictor_to_outcome" else sd_wy / sd_wx
        )
    out["standardised_trait_effect_patient"] = beta_p * np.sqrt(var_bx / var_by)
    levels = {"patient": (var_bx, var_by)}
    if spec.therapist_level:
        var_ax = _get(post, v.SD_THERAPIST_PREDICTOR, like) ** 2
        beta_t = _get(post, v.TRAIT_EFFECT_THERAPIST, like)
        var_ay = _get(post, v.SD_THERAPIST_OUTCOME, like) ** 2 + beta_t**2 * var_ax
        out["standardised_trait_effect_therapist"] = beta_t * np.sqrt(var_ax / var_ay)
        levels["therapist"] = (var_ax, var_ay)
    for k, var in ((0, "predictor"), (1, "outcome")):
        shares = moments.icc({lvl: pair[k] for lvl, pair in levels.items()}, s[..., k, k])
        for lvl, share in shares.items():
            out[f"icc_{var}_{lvl}"] = share
    return out


def posterior_arrays(posterior: xr.Dataset, names: list[str]) -> dict[str, np.ndarray]:
    """Arrays (chain, draw[, k]) of the named variables that the posterior has."""
    return {n: np.asarray(posterior[n].values) for n in names if n in posterior}


def bayesian_r2(post: xr.Dataset, y: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Whole-model Bayesian R-squared of the outcome equation per draw (Gelman, Goodrich, Gabry
    & Vehtari 2019): var(fit) / (var(fit) + sigma^2), over observed cells with a previous session.

    The fit is the outcome's conditional mean given the latent mean and the previous states,
    ``M_y + state_effect xw_(t-1) + outcome_autoregression yw_(t-1)`` (plus the same-session
    term); sigma^2 is the outcome's innovation variance. Needs the stored states.
    """
    if "state_outcome" not in post or spec.dynamics != "var1":
        raise ValueError(
            "Bayesian R-squared needs a model with dynamics and stored states (store_states=True)"
        )
    obs = ~np.isnan(y)
    prev_ok = np.zeros_like(obs)
    prev_ok[:, 1:] = obs[:, 1:]
    out = []
    for c in range(post.sizes["chain"]):
        wx = post["state_predictor"].isel(chain=c).values  # (draw, P, S)
        wy = post["state_outcome"].isel(chain=c).values
        m_y = y[None] - wy  # the latent mean surface where y is observed
        slope = (
            post["state_effect_by_patient"].isel(chain=c).values[..., None]
            if "state_effect_by_patient" in post
            else post[v.STATE_EFFECT].isel(chain=c).values[:, None, None]
        )
        fit = (
            m_y[..., 1:]
            + slope * wx[..., :-1]
            + post[v.OUTCOME_AUTOREGRESSION].isel(chain=c).values[:, None, None] * wy[..., :-1]
        )
        if spec.same_session == "predictor_to_outcome":
            fit = (
                fit + post[v.SAME_SESSION_EFFECT].isel(chain=c).values[:, None, None] * wx[..., 1:]
            )
        valid = prev_ok[:, 1:][None] & np.isfinite(fit)
        f = np.where(valid, fit, np.nan)
        var_fit = np.nanvar(f.reshape(f.shape[0], -1), axis=1, ddof=1)
        sigma2 = post[v.INNOVATION_SD_OUTCOME].isel(chain=c).values ** 2
        out.append(var_fit / (var_fit + sigma2))
    return np.stack(out)
