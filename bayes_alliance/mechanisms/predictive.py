r"""Posterior predictive replicates of the mechanism models: every patient's whole series and its
end-of-treatment outcome, replicated from each of a thinned set of posterior draws.

For draw ``theta`` the latent parts are drawn first, from their exact conditional given the
data and ``theta`` (so that ``(theta, latents)`` is a draw of the joint posterior), then a new
data set is drawn from the model given them (the equations of
:mod:`bayes_alliance.mechanisms.integrated`)::

    w_(first)i ~ N(0, Sigma_1),   w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ N(0, Sigma_e(i))
    z_rep,ti = mu + u_j + v_i + (s + delta_i) c_ti e_1 + w_ti + eps_ti,   eps ~ N(0, diag(omega^2))
    O_rep,i = g_0 + u^O_j + g_T u_j1 + g_P v_i1 + g_S delta_i + eta_i   (Gaussian)
    O_rep,i ~ Bernoulli(logistic(the same linear predictor without eta_i))   (binary)

on the patient's own grid columns (first to last; a missing cell is a column the VAR passes
through), kept at the observed cells. A baseline adds its known shifts
(:mod:`bayes_alliance.mechanisms.baseline`): ``gamma z_i`` to the levels and ``z_i' (c_O + g
gamma_1)`` to the end outcome's linear predictor, whose parts ``v_i1``, ``u_j1`` are then what
the baseline leaves (in either form).

Latent parts. In the integrated form (the default) the posterior holds no latent means, so
they are drawn given the data:

1. the therapists' ``tau_j = (u_j, u^O_j)`` from their Gaussian posterior given all the data
   (:func:`bayes_alliance.mechanisms.patient_density.therapist_posterior`: the caseload's
   factors with each patient's ``b_i`` integrated, plus the prior);
2. each patient's ``b_i = (v_i, delta_i)`` given ``tau_j``: the patient's factor in ``(b_i,
   tau_j)`` (Kalman filter and end outcome, :func:`bayes_alliance.mechanisms.integrated.
   patient_factor`), ``-1/2 [x' Lambda x - 2 eta' x]``, times its prior ``N(0, Sigma_P)``,

       b_i | tau_j, y, theta ~ N(Q_i^-1 h_i, Q_i^-1),
       Q_i = Lambda_bb,i + Sigma_P^-1,   h_i = eta_b,i - Lambda_bt,i tau_j.

In the sampled form (a binary end outcome) the posterior holds the latent means
(``trait = mu + u_j + v_i``), the changes and the therapist parts, and they are taken from it.
A saved sampled-form fit keeps neither the therapists' offsets nor the outcome's therapist
intercepts (:data:`bayes_alliance.mechanisms.fit.NOT_STORED`), so with three levels its end
outcome is not replicated (the series still are); nor is that of a file written before the
trait's effect on it was split by level.

Replicates are whole series given the latent parts, not one step ahead: the check compares each
series' observed mean per session with the replicated means (a missing trend, or dynamics that
drift away from the data, show there), and the end outcome's mean and SD (proportion) with
theirs. Seeded; numpy only, one filter pass per draw.

References: Gelman, Meng & Stern (1996), Statistica Sinica 6:733 (posterior predictive checks);
Durbin & Koopman (2012), *Time Series Analysis by State Space Methods*, section 4.3 (Gaussian
conditioning of a state-space model's coefficients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.mechanisms.baseline import BASELINE_EFFECT_END, draw_shifts
from bayes_alliance.mechanisms.integrated import (
    IntegratedParams,
    caseloads,
    end_factor,
    filter_inputs,
    patient_factor,
    patient_factors,
    shifted_end,
    therapist_prior,
)
from bayes_alliance.mechanisms.patient_density import gaussian_draw, params_of, therapist_posterior
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec

N_DRAWS = 200  # posterior draws replicated by default (and by the report's check)
STREAM = 20260426  # the replicates' stream, independent of the sampler's and the densities'
END_CELL = "observed_end_patient"


def cell_dim(role: str) -> str:
    """The dimension of a series' observed cells (``observed_<role>_cell``)."""
    return f"observed_{role}_cell"


@dataclass(frozen=True)
class Latents:
    """What a replicate needs beyond the dynamics, per patient (leading batch axes allowed):
    the level ``mu + u_j + v_i`` (..., P, k), the predictor's slope ``s + delta_i`` (..., P)
    or None without a trend, the end outcome's mean or logit (..., P) or None, and its residual
    SD (None: binary)."""

    level: np.ndarray
    slope: np.ndarray | None = None
    end_mean: np.ndarray | None = None
    end_sd: float | None = None


def full_factor(
    data: SeriesData, acc: np.ndarray, params: IntegratedParams, n_coef: int
) -> Quadratic:
    """Each patient's factor in ``(b_i, tau_j)`` before anything is integrated: the filter's
    ``A`` (P, J+1, J+1) and the Gaussian end outcome's factor (its constants left out: only
    the conditional moments are read)."""
    k, n = data.k, data.n_patients
    n_tau = (k + int(params.end is not None)) if params.chol_therapist is not None else 0
    factor = patient_factor(np.zeros(n), acc, k, n_coef, n_tau)
    end = shifted_end(params)
    if end is not None:
        factor = factor.plus(end_factor(data, end, n_coef, n_tau, k, np))
    return factor


def patient_conditional(
    factor: Quadratic, n_coef: int, chol_patient: np.ndarray, tau: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (..., P, J) and precision (P, J, J) of each patient's ``b_i`` given its therapist's
    ``tau_j`` (rows per patient, (..., P, m); None with two levels): ``Q = Lambda_bb +
    Sigma_P^-1``, mean ``Q^-1 (eta_b - Lambda_bt tau)``."""
    lam, eta = factor.lam, factor.eta
    prec = lam[:, :n_coef, :n_coef] + np.linalg.inv(chol_patient @ chol_patient.T)
    h = eta[:, :n_coef]
    if tau is not None:
        h = h - np.einsum("pab,...pb->...pa", lam[:, :n_coef, n_coef:], tau)
    mean = np.linalg.solve(prec, h[..., None])[..., 0]
    return mean, prec


def conditional_latents(
    data: SeriesData,
    grid: MechanismGrid,
    inputs: Mapping[str, np.ndarray],
    params: IntegratedParams,
    rng: np.random.Generator,
    size: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Draws of every patient's ``b_i`` (*size, P, J) and every therapist's ``tau_j``
    (*size, T, m) (None with two levels) from their joint conditional given the data and the
    parameters of the integrated form (see the module)."""
    after, acc = patient_factors(data, dict(inputs), grid.filled, grid.time, params)
    n_coef = inputs["x"].shape[-1]
    tau, at = None, None
    if params.chol_therapist is not None:
        mean, prec = therapist_posterior(after, caseloads(data), therapist_prior(params, data.k))
        tau = gaussian_draw(np.broadcast_to(mean, (*size, *mean.shape)), prec, rng)
        at = tau[..., data.patient_therapist, :]
    factor = full_factor(data, acc, params, n_coef)
    mean_b, prec_b = patient_conditional(factor, n_coef, params.chol_patient, at)
    b = gaussian_draw(np.broadcast_to(mean_b, (*size, *mean_b.shape[-2:])), prec_b, rng)
    return b, tau


def integrated_latents(
    params: IntegratedParams, b: np.ndarray, tau: np.ndarray | None, therapist: Any
) -> Latents:
    """The replicate's levels, slopes and end-outcome mean from every patient's ``b_i``
    (..., P, J) and every therapist's ``tau_j`` (..., T, m) (None with two levels; ``therapist``
    the patients' therapist codes (P,), or None)."""
    k = np.size(params.intercept)
    # b_i is the deviation from the known means: a baseline's shift and, with random lags that
    # covary with the coefficients, m_i (:class:`IntegratedParams`)
    whole = b if params.patient_mean is None else b + params.patient_mean
    level = params.intercept + whole[..., :k]
    if params.baseline is not None:
        level = level + params.baseline
    at = None
    if tau is not None:
        at = tau[..., therapist, :]
        level = level + at[..., :k]
    delta = whole[..., k] if params.trend is not None else None
    slope = None if delta is None else params.trend + delta
    end = params.end
    if end is None:
        return Latents(level, slope)
    mean = end.intercept + end.trait_patient * whole[..., 0]
    if end.shift is not None:  # the baseline's: its direct path and g_P times its shift of x
        mean = mean + end.shift
    if delta is not None:
        mean = mean + end.change * delta
    if at is not None:
        mean = mean + end.trait_therapist * at[..., 0] + at[..., k]
    return Latents(level, slope, mean, float(end.sd))


def sampled_latents(
    draw: Mapping[str, np.ndarray],
    data: SeriesData,
    params: IntegratedParams,
    spec: MechanismSpec | None = None,
) -> Latents:
    """The latent parts a sampled-form draw holds: ``trait`` (the levels), ``change_deviation``
    and the end outcome's linear predictor. Without the therapists' offsets (a saved
    three-level fit) or the trait effect by level (a file written before it was split) the end
    outcome is left out (``end_mean`` None); so it is with a baseline when no ``spec`` (the
    resolved spec, naming the baseline's columns and level) is given.

    With a baseline the linear predictor is the model's: the parts the baseline leaves
    (``v_i1 = trait_i1 - mu_1 - u_j1 - gamma_1' z_i``, ``u_j1``) with their effects, plus the
    known shift ``z_i' (c_O + g gamma_1)`` (:func:`bayes_alliance.mechanisms.baseline.
    draw_shifts`), i.e. the regression on the predictor's level parts as a whole."""
    level = np.asarray(draw["trait"], dtype=float)
    delta = np.asarray(draw["change_deviation"], dtype=float) if params.trend is not None else None
    slope = None if delta is None else params.trend + delta
    if data.end_outcome is None or "end_trait_effect_patient" not in draw:
        return Latents(level, slope)
    centre = np.broadcast_to(np.asarray(draw["intercept"], dtype=float)[0], level.shape[:-1])
    lin = float(draw["end_intercept"]) + np.zeros(level.shape[:-1])
    if BASELINE_EFFECT_END in draw:
        if spec is None:
            return Latents(level, slope)
        mean_shift, end_shift = draw_shifts(draw, data, spec.baseline, spec.baseline_level)
        assert mean_shift is not None and end_shift is not None
        centre = centre + mean_shift[:, 0]
        lin = lin + end_shift
    if params.chol_therapist is not None:
        if "therapist_offset" not in draw or "end_therapist_offset" not in draw:
            return Latents(level, slope)
        tj = data.patient_therapist
        u = np.asarray(draw["therapist_offset"]) @ params.chol_therapist.T
        centre = centre + u[tj, 0]
        lin = lin + float(draw["sd_end_therapist"]) * np.asarray(draw["end_therapist_offset"])[tj]
        lin = lin + float(draw["end_trait_effect_therapist"]) * u[tj, 0]
    lin = lin + float(draw["end_trait_effect_patient"]) * (level[..., 0] - centre)
    if delta is not None:
        lin = lin + float(draw["end_change_effect"]) * delta
    sd = float(draw["end_sd"]) if "end_sd" in draw else None
    return Latents(level, slope, lin, sd)


def replicate(
    params: IntegratedParams,
    latents: Latents,
    first: np.ndarray,
    last: np.ndarray,
    time: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One replicate per leading index of ``latents``: the series (..., P, S, k) on each
    patient's columns ``first..last`` (NaN outside) and the end outcome (..., P) or None.

    Parameters
    ----------
    params
        Lag matrices (P, k, k), innovation covariance (k, k) or (P, k, k), first-cell
        covariance, measurement-error variances (k,) or None.
    latents
        Levels, slopes and end-outcome means (:class:`Latents`).
    first, last, time
        Each patient's first and last grid column and the centred session numbers (P, S).
    rng
        The generator drawn from.
    """
    level = np.asarray(latents.level, dtype=float)
    batch, (n, k) = level.shape[:-2], level.shape[-2:]
    n_s = time.shape[1]
    phi = np.broadcast_to(params.phi, (n, k, k))
    chol_e = np.linalg.cholesky(np.broadcast_to(params.sigma, (n, k, k)))
    chol_1 = np.linalg.cholesky(np.broadcast_to(params.first_cov, (n, k, k)))
    sd_error = np.sqrt(params.error) if params.error is not None else np.zeros(k)
    w = np.zeros((*batch, n, k))
    out = np.full((*batch, n, n_s, k), np.nan)
    for t in range(n_s):
        shock = rng.standard_normal((*batch, n, k))
        moved = np.einsum("pab,...pb->...pa", phi, w) + np.einsum("pab,...pb->...pa", chol_e, shock)
        fresh = np.einsum("pab,...pb->...pa", chol_1, shock)
        w = np.where((first == t)[:, None], fresh, moved)
        cell = level + w + sd_error * rng.standard_normal((*batch, n, k))
        if latents.slope is not None:
            cell[..., 0] += latents.slope * time[:, t]
        inside = (first <= t) & (t <= last)
        out[..., t, :] = np.where(inside[:, None], cell, np.nan)
    if latents.end_mean is None:
        return out, None
    mean = np.asarray(latents.end_mean, dtype=float)
    if latents.end_sd is None:  # binary: Bernoulli of the logit
        end = (rng.random(mean.shape) < 1.0 / (1.0 + np.exp(-mean))).astype(float)
    else:
        end = mean + latents.end_sd * rng.standard_normal(mean.shape)
    return out, end


def _picks(n_chain: int, n_draw: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of the thinned draws: all of them, or ``n_draws`` at random, sorted."""
    total = n_chain * n_draw
    if n_draws >= total:
        return np.arange(total)
    return np.sort(rng.choice(total, size=n_draws, replace=False))


def _cells(data: SeriesData) -> dict[str, Any]:
    """Per series, the observed cells' (patient rows, grid columns) in C order."""
    return {role: np.nonzero(np.isfinite(data.z[:, :, r])) for r, role in enumerate(data.roles)}


def _coords(data: SeriesData, dim: str, rows: np.ndarray, cols: np.ndarray | None) -> dict:
    ids = np.asarray(data.coords()[vocab.PATIENT], dtype=object)[rows].astype(str)
    coords: dict[str, Any] = {dim: np.arange(len(rows)), f"{dim}_patient": (dim, ids)}
    if cols is not None:
        coords[f"{dim}_session"] = (dim, np.asarray(data.base.sessions)[cols])
    return coords


def observed_data(data: SeriesData) -> xr.Dataset:
    """The observed values at their cells, one variable per series role (``observed_<role>_
    cell``, each cell labelled with its patient and session) and ``end_outcome`` (observed
    patients) when the data have one."""
    out = {}
    for r, (role, (rows, cols)) in enumerate(_cells(data).items()):
        dim = cell_dim(role)
        out[role] = xr.DataArray(
            data.z[rows, cols, r], dims=(dim,), coords=_coords(data, dim, rows, cols)
        )
    if data.end_outcome is not None:
        seen = np.flatnonzero(np.isfinite(data.end_outcome))
        out[vocab.END_OUTCOME] = xr.DataArray(
            data.end_outcome[seen], dims=(END_CELL,), coords=_coords(data, END_CELL, seen, None)
        )
    return xr.Dataset(out)


def posterior_predictive(
    posterior: xr.Dataset,
    data: SeriesData,
    spec: MechanismSpec,
    n_draws: int = N_DRAWS,
    random_seed: int = 0,
) -> xr.DataTree:
    """Replicated series and end outcome for ``n_draws`` posterior draws (chosen at random,
    seeded; all of them when there are fewer), with the observed data.

    Parameters
    ----------
    posterior
        The fit's posterior (chain, draw, ...), by the model's names.
    data, spec
        The fitted data and the resolved spec (either form).
    n_draws
        Draws replicated.
    random_seed
        Seed of the choice of draws, the latent parts and the replicates.

    Returns
    -------
    xarray.DataTree
        ``posterior_predictive``: one variable per series role at its observed cells, dims
        (chain, draw, ``observed_<role>_cell``) with one chain (the thinned draws; their
        source chain and draw as ``source_chain``, ``source_draw``), and ``end_outcome``
        (``observed_end_patient``) when it is replicated; ``observed_data``: the same cells'
        observed values (:func:`observed_data`).
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws}")
    spec = spec.resolved(data)
    rng = np.random.default_rng([random_seed, STREAM])
    arrays = {str(n): np.asarray(v.values) for n, v in posterior.data_vars.items()}
    n_chain, n_draw = arrays["lag"].shape[:2]
    picks = _picks(n_chain, n_draw, n_draws, rng)
    grid = MechanismGrid.of(data)
    integrated = spec.traits == "integrated"
    inputs = filter_inputs(data, grid, bool(spec.trend)) if integrated else None
    # The sampled form's draws hold no end-outcome parameters params_of could read as Gaussian.
    series_only = data if integrated else replace(data, end_outcome=None)
    cells = _cells(data)
    seen = None if data.end_outcome is None else np.flatnonzero(np.isfinite(data.end_outcome))
    reps: dict[str, list[np.ndarray]] = {role: [] for role in data.roles}
    ends: list[np.ndarray] = []
    for flat in picks:
        c, d = divmod(int(flat), n_draw)
        draw = {name: v[c, d] for name, v in arrays.items()}
        params = params_of(draw, series_only, spec)
        if integrated:
            assert inputs is not None
            b, tau = conditional_latents(data, grid, inputs, params, rng)
            latents = integrated_latents(params, b, tau, data.patient_therapist)
        else:
            latents = sampled_latents(draw, data, params, spec)
        series, end = replicate(params, latents, data.first, data.last, grid.time, rng)
        for r, (role, (rows, cols)) in enumerate(cells.items()):
            reps[role].append(series[rows, cols, r])
        if end is not None and seen is not None:
            ends.append(end[seen])
    source = {
        "source_chain": ("draw", picks // n_draw),
        "source_draw": ("draw", picks % n_draw),
    }
    out = {}
    for role, (rows, cols) in cells.items():
        dim = cell_dim(role)
        out[role] = xr.DataArray(
            np.stack(reps[role])[None],
            dims=("chain", "draw", dim),
            coords={**_coords(data, dim, rows, cols), **source},
        )
    if ends and seen is not None:
        out[vocab.END_OUTCOME] = xr.DataArray(
            np.stack(ends)[None],
            dims=("chain", "draw", END_CELL),
            coords={**_coords(data, END_CELL, seen, None), **source},
        )
    return xr.DataTree.from_dict(
        {"posterior_predictive": xr.Dataset(out), "observed_data": observed_data(data)}
    )


__all__ = [
    "END_CELL",
    "N_DRAWS",
    "Latents",
    "cell_dim",
    "conditional_latents",
    "full_factor",
    "gaussian_draw",
    "integrated_latents",
    "observed_data",
    "patient_conditional",
    "posterior_predictive",
    "replicate",
    "sampled_latents",
]
