r"""One patient's latent means and k-series states per posterior draw of a mechanism fit,
drawn from their exact conditional given the data: what the feedback page reads.

For a posterior draw ``theta`` (integrated form) the latent parts are drawn in two steps, so
that ``(theta, b, tau, w)`` is a draw of the joint posterior:

1. every therapist's ``tau_j`` and every patient's ``b_i = (v_i[, delta_i])`` from their
   Gaussian conditional given the data and ``theta`` (the predictive check's
   :func:`bayes_alliance.mechanisms.predictive.conditional_latents`), which gives the levels
   ``mu + u_j + v_i`` (plus a baseline's shift) and slopes ``s + delta_i`` of every patient;
2. the patient's states ``w_t`` given those and the data. With ``r_t = z_t - level - slope
   c_t e_1`` the series is the linear Gaussian state-space model

       r_t = w_t + eps_t,   eps_t ~ N(0, diag(omega^2)),
       w_t = Phi_i w_(t-1) + e_t,   e_t ~ N(0, Sigma_i),   w_first ~ N(0, Sigma_1),

   observed at the patient's observed cells, and the states are drawn jointly by forward
   filtering, backward sampling (Carter & Kohn 1994; Fruehwirth-Schnatter 1994):
   ``w_n ~ N(m_n|n, P_n|n)`` and, backwards,

       w_t | w_(t+1), r_(1..t) ~ N(m_t|t + J_t (w_(t+1) - Phi m_t|t), P_t|t - J_t P_(t+1|t) J_t'),
       J_t = P_t|t Phi' P_(t+1|t)^-1.

   A series without measurement error (``omega_r = 0``) has its observed cells as the states
   exactly (the filtered covariance is 0 there); they are returned as observed, and only its
   missing cells are drawn.

In the sampled form (a binary end outcome) the draw holds the levels and changes themselves
(:func:`bayes_alliance.mechanisms.predictive.sampled_latents`) and step 2 is the same.

Missing cells of a time step enter the filter's update as rows of zero loading with unit noise
and zero residual, so that every draw and time step is one batched k x k update (exact: such a
row carries no information). Numpy only; draws on the first axis.

References: Carter, C. K. & Kohn, R. (1994), Biometrika 81:541; Fruehwirth-Schnatter, S.
(1994), J Time Ser Anal 15:183; Durbin & Koopman (2012), *Time Series Analysis by State Space
Methods*, sections 4.3 and 4.9.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.integrated import filter_inputs
from bayes_alliance.mechanisms.new_patient import NewDraws, recentred, with_new
from bayes_alliance.mechanisms.patient_density import params_of
from bayes_alliance.mechanisms.predictive import (
    N_DRAWS,
    conditional_latents,
    integrated_latents,
    sampled_latents,
)
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec

STREAM = 20260517  # the state draws' stream, apart from the sampler's and the replicates'

__all__ = ["PatientStates", "draw_picks", "patient_states", "sample_states"]


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _psd_draw(cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of ``N(0, cov)`` per leading index, ``cov`` positive semi-definite (exactly
    observed entries have zero variance): through the eigendecomposition, negative rounding
    clipped to 0."""
    val, vec = np.linalg.eigh(_sym(cov))
    z = rng.standard_normal(val.shape) * np.sqrt(np.clip(val, 0.0, None))
    return np.einsum("...ij,...j->...i", vec, z)


def sample_states(
    resid: np.ndarray,
    phi: np.ndarray,
    sigma: np.ndarray,
    first_cov: np.ndarray,
    error: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of the states of one series given its residuals, by forward filtering and backward
    sampling (see the module).

    Parameters
    ----------
    resid
        ``r_t`` per draw, (D, n, k): the series less its levels (and trend), NaN where a value is
        missing; column 0 is the series' first session.
    phi, sigma, first_cov
        The lag matrix, innovation and first-session covariances per draw, (D, k, k) (or
        broadcastable).
    error
        Measurement-error variances per draw, (D, k) (0: measured without error).
    rng
        The generator drawn from.

    Returns
    -------
    numpy.ndarray, shape (D, n, k)
        One draw of the states per draw; a cell observed without error holds its residual.
    """
    r = np.asarray(resid, dtype=float)
    n_d, n, k = r.shape
    phi = np.broadcast_to(np.asarray(phi, dtype=float), (n_d, k, k))
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), (n_d, k, k))
    first = np.broadcast_to(np.asarray(first_cov, dtype=float), (n_d, k, k))
    err = np.broadcast_to(np.asarray(error, dtype=float), (n_d, k))
    seen = np.isfinite(r)
    eye = np.eye(k)
    m_f = np.zeros((n_d, n, k))
    p_f = np.zeros((n_d, n, k, k))
    p_next = np.zeros((n_d, n, k, k))  # P_(t+1|t), kept for the backward pass
    m_pred, p_pred = np.zeros((n_d, k)), first
    for t in range(n):
        o = seen[:, t, :].astype(float)  # (D, k)
        # missing entries: zero loading, unit noise, zero residual (no information)
        h = o[:, :, None] * eye
        noise = np.where(o > 0, err, 1.0)
        f = h @ p_pred @ h + noise[:, :, None] * eye
        innov = np.where(o > 0, np.nan_to_num(r[:, t]) - m_pred, 0.0)
        gain = np.linalg.solve(f, h @ p_pred).swapaxes(-1, -2)  # P H' F^-1 (F symmetric)
        m_f[:, t] = m_pred + np.einsum("dij,dj->di", gain, innov)
        p_f[:, t] = _sym(p_pred - gain @ h @ p_pred)
        m_pred = np.einsum("dij,dj->di", phi, m_f[:, t])
        p_pred = _sym(phi @ p_f[:, t] @ phi.swapaxes(-1, -2) + sigma)
        p_next[:, t] = p_pred
    w = np.zeros((n_d, n, k))
    w[:, n - 1] = m_f[:, n - 1] + _psd_draw(p_f[:, n - 1], rng)
    for t in range(n - 2, -1, -1):
        pf = p_f[:, t]
        j = np.linalg.solve(p_next[:, t], phi @ pf).swapaxes(-1, -2)  # P Phi' P_next^-1
        mean = m_f[:, t] + np.einsum(
            "dij,dj->di", j, w[:, t + 1] - np.einsum("dij,dj->di", phi, m_f[:, t])
        )
        cov = pf - j @ p_next[:, t] @ j.swapaxes(-1, -2)
        w[:, t] = mean + _psd_draw(cov, rng)
    exact = seen & (err[:, None, :] == 0)
    return np.where(exact, r, w)


@dataclass(frozen=True)
class PatientStates:
    """One patient's draws (first axis: the thinned posterior draws, ``source`` their flat
    indices into chain x draw).

    ``level`` (D, P, k): every patient's latent level ``mu + u_j + v_i`` (+ a baseline's
    shift) per series, drawn jointly with this patient's; ``slope`` (D,) the patient's
    predictor slope ``s + delta_i`` (None without a trend); ``states`` (D, n, k) and
    ``residual`` (D, n, k) over the patient's columns ``first..last`` (``columns``; residual
    NaN where missing); ``phi``, ``sigma``, ``first_cov`` (D, k, k) the patient's own
    dynamics; ``error`` (D, k) the measurement-error variances."""

    row: int
    columns: np.ndarray
    source: np.ndarray
    level: np.ndarray
    slope: np.ndarray | None
    states: np.ndarray
    residual: np.ndarray
    phi: np.ndarray
    sigma: np.ndarray
    first_cov: np.ndarray
    error: np.ndarray


def draw_picks(n_chain: int, n_draw: int, n_draws: int) -> np.ndarray:
    """Flat indices (chain-major) of the thinned draws: all of them when there are no more than
    ``n_draws``, else ``n_draws`` evenly spaced (every chain keeps its share)."""
    total = n_chain * n_draw
    if n_draws >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, n_draws).round().astype(int))


def patient_states(
    posterior: Mapping[str, np.ndarray],
    data: SeriesData,
    spec: MechanismSpec,
    row: int,
    n_draws: int = N_DRAWS,
    random_seed: int = 0,
    new: NewDraws | None = None,
) -> PatientStates:
    """Latent levels of every patient and the states of patient ``row`` per thinned draw,
    from their exact conditional given the data (see the module).

    Parameters
    ----------
    posterior
        The fit's arrays by the model's names, (chain, draw, ...).
    data, spec
        The data conditioned on (the fitted data, or it with new sessions of a fitted patient:
        the per-patient draws must follow its patient rows) and the resolved spec.
    row
        The patient's row in ``data``.
    n_draws
        Posterior draws used (:func:`draw_picks`).
    random_seed
        Seeds every draw; the same seed gives the same states.
    new
        With a new patient in ``data`` (:mod:`bayes_alliance.mechanisms.new_patient`): its
        random lags and innovation offsets (and a new therapist's lags) per picked draw,
        inserted into the draws' arrays, and the fit's baseline centring; the picks must be
        those of ``n_draws``.
    """
    spec = spec.resolved(data)
    rng = np.random.default_rng([random_seed, STREAM])
    arrays = {str(n): np.asarray(v) for n, v in posterior.items()}
    n_chain, n_draw = arrays["lag"].shape[:2]
    picks = draw_picks(n_chain, n_draw, n_draws)
    if new is not None and not np.array_equal(new.picks, picks):
        raise ValueError("the new patient's draws were made for other posterior draws")
    grid = MechanismGrid.of(data)
    integrated = spec.traits == "integrated"
    inputs = filter_inputs(data, grid, bool(spec.trend)) if integrated else None
    series_only = data if integrated else replace(data, end_outcome=None)
    lo, hi = int(data.first[row]), int(data.last[row]) + 1
    z = data.z[row, lo:hi]
    time = grid.time[row, lo:hi]
    parts: dict[str, list[Any]] = {k: [] for k in ("level", "slope", "resid", "phi", "sigma")}
    parts |= {"first": [], "error": []}
    for i, flat in enumerate(picks):
        c, d = divmod(int(flat), n_draw)
        draw = {name: a[c, d] for name, a in arrays.items()}
        if new is not None:
            draw = with_new(draw, new, i)
        params = params_of(draw, series_only, spec)
        if new is not None:
            params = recentred(params, draw, series_only, spec, new.where.centre)
        if integrated:
            assert inputs is not None
            b, tau = conditional_latents(data, grid, inputs, params, rng)
            lat = integrated_latents(params, b, tau, data.patient_therapist)
        else:
            lat = sampled_latents(draw, data, params)
        level = np.asarray(lat.level, dtype=float)
        mean = np.broadcast_to(level[row], z.shape).copy()
        slope = None
        if lat.slope is not None:
            slope = float(np.asarray(lat.slope)[row])
            mean[:, 0] += slope * time
        parts["level"].append(level)
        parts["slope"].append(slope)
        parts["resid"].append(z - mean)
        parts["phi"].append(np.asarray(params.phi)[row])
        sig = np.asarray(params.sigma)
        parts["sigma"].append(sig[row] if sig.ndim == 3 else sig)
        parts["first"].append(np.asarray(params.first_cov))
        err = params.error if params.error is not None else np.zeros(data.k)
        parts["error"].append(np.asarray(err, dtype=float))
    stack = {k: np.stack(val) for k, val in parts.items() if k != "slope"}
    states = sample_states(
        stack["resid"], stack["phi"], stack["sigma"], stack["first"], stack["error"], rng
    )
    slopes = None if parts["slope"][0] is None else np.asarray(parts["slope"], dtype=float)
    return PatientStates(
        row=row,
        columns=np.arange(lo, hi),
        source=picks,
        level=stack["level"],
        slope=slopes,
        states=states,
        residual=stack["resid"],
        phi=stack["phi"],
        sigma=stack["sigma"],
        first_cov=stack["first"],
        error=stack["error"],
    )
