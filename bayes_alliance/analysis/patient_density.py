r"""Each patient's marginal log density of their observed cells, per posterior draw.

Leave-one-patient-out needs ``log p(y_i | theta)`` for every patient i and draw theta, with the
patient's own latent quantities integrated out: the latent mean M_i, the per-patient trend
deviations, and every missing cell (a skipped session or a missing rating). Summing conditional
cell densities given a drawn latent mean and imputed cells is not that density (the imputed
cells' own terms are missing from it), and importance sampling on it is invalid.

Given the parameters, a patient's series is a linear Gaussian state-space model::

    state  a_t = (w_t, M, delta)        w_t = Phi* w_(t-1) + u_t,  u_t ~ N(0, Sigma*_t)
    obs    z_t - known_t = w_t + M + delta (t - t_0)      (the observed entries only)
    start  w_1 ~ N(0, F),  M ~ N(0, T),  delta ~ N(0, D)

with ``known_t`` the intercept (or session mean), the average trend, the baseline's shift of
the latent mean (between-level mediation, patient- or therapist-level) and the therapist part of the latent mean, T the patient-level trait covariance and D the trend-deviation variances. A
Kalman filter that processes the observed entries one at a time (skipping missing ones) gives
the exact marginal density as the sum of its prediction-error terms. The patient's own slope
deviation (random slopes) and the therapist deviations are conditioned on (drawn with the
other parameters), which keeps the importance-sampling identity valid.

Pure numpy, batched over draws and patients; independent of PyMC and PyTensor (a fit from the
warm compile cache writes these values without importing either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bayes_alliance.analysis import continuous_density
from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import marginal
from bayes_alliance.kernels.kalman_batch_nb import batch_factor_draws
from bayes_alliance.model import indicators
from bayes_alliance.model.covariates import baseline_level, baseline_values, covariate_values
from bayes_alliance.model.grid import SeriesGrid, SeriesMoments, censored_cells, moment_sums
from bayes_alliance.model.structure import (
    dynamics_from,
    known_means,
    lookup,
    therapist_part,
    trait_cov,
)
from bayes_alliance.model.variability import own_innovations
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
LOG_2PI = float(np.log(2 * np.pi))
CHUNK = 200_000  # draws x patients filtered at once (the 4-state filter)
CHUNK_CELLS = 2_000_000  # draws x cells per chunk of the filter (16 MB an array)
CHUNK_SUMS = 65_536  # draws x patients per chunk of the sums of products (512 kB an array)


def patient_loglik(
    post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec
) -> np.ndarray:
    """Marginal log density of each patient's observed cells, shape (chain, draw, patient).

    Parameters
    ----------
    post
        Posterior arrays (chain, draw[, ...]) by name: the named parameters, the therapist
        deviations' raw values, ``state_effect_by_patient`` when slopes vary, session means,
        the free first-session parameters and the trend raw values as the spec has them.
    data, spec
        The data and options of the fit.

    Raises
    ------
    ValueError
        With scores censored at a ceiling or floor: a patient's marginal probability of the
        censored events is a multivariate normal probability, not computed here.
    """
    if spec.time_model == "continuous":  # one lag matrix per interval
        return continuous_density.patient_loglik(post, data, spec)
    if spec.censored and censored_cells(data, spec).any:
        raise ValueError(
            "leave-one-patient-out densities are not available for a fit with censored scores "
            "(--ceiling-predictor and the like): a patient's censored cells would need a "
            "multivariate normal probability; compare by session instead (--unit session, or "
            "unit='session'), where a censored cell's value is the log probability of its event"
        )
    like = np.asarray(post[v.INNOVATION_SD_OUTCOME], dtype=float)
    n_c, n_d = like.shape[:2]
    flat = {
        k: np.asarray(val, dtype=float).reshape(n_c * n_d, *np.shape(val)[2:])
        for k, val in post.items()
    }
    n_b = n_c * n_d
    if _by_factor(data, spec):
        return _factor_loglik(flat, data, spec).reshape(n_c, n_d, data.n_patients)
    out = np.empty((n_b, data.n_patients))
    step = max(1, CHUNK // data.n_patients)
    for i in range(0, n_b, step):
        part = {k: val[i : i + step] for k, val in flat.items()}
        out[i : i + step] = _filter(part, data, spec)
    return out.reshape(n_c, n_d, data.n_patients)


def _by_factor(data: SessionData, spec: ModelSpec) -> bool:
    """Whether the latent mean is the only patient quantity to integrate (no trend
    deviations in the state, no indicators' scores): then :func:`_factor_loglik` applies."""
    return not spec.trend and not indicators.grids(data, spec)


def _factor_loglik(
    post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec
) -> np.ndarray:
    r"""All draws' patient densities (B, P) through the latent mean's Gaussian factor: each
    patient's ``log C`` and factor in M, then

    .. math:: \log p(z_i \mid \theta) = \log C_i + \log \int e^{-\frac12 [q - 2 g'M + M'LM]}
              N(M; 0, T)\, dM

    (:func:`bayes_alliance.kernels.marginal.mean_integral`), the same density as the filter
    over (w, M) of :func:`_filter` (equal to rounding; tested).

    ``post`` holds the draws on the first axis (B, ...); they are taken in chunks of
    :data:`CHUNK_CELLS` grid cells. ``log C`` and the factor come without PyTensor (a fit from
    the warm compile cache imports none): complete series without measurement error and with
    one known mean per patient from the per-patient sums of products
    (:class:`~bayes_alliance.model.grid.SeriesMoments`, :func:`~bayes_alliance.model.grid.moment_sums`:
    O(patients) per draw, all draws of a chunk at once); every other grid through the model's
    forward filter kernel vectorised across patients
    (:func:`bayes_alliance.kernels.kalman_batch_nb.batch_factor_draws`, numba, all draws of a
    chunk in one call).
    """
    n_b, n_p, n_s = len(post[v.INNOVATION_SD_OUTCOME]), data.n_patients, data.n_sessions
    moments = _moments(data, spec)
    grid = None if moments is not None else _FilterGrid.of(data)
    out = np.empty((n_b, n_p))
    # the sums' algebra is on (B, P) arrays: chunks small enough to stay in the cache
    step = max(1, (CHUNK_SUMS // n_p) if moments is not None else CHUNK_CELLS // (n_p * n_s))
    for i in range(0, n_b, step):
        part = {k: val[i : i + step] for k, val in post.items()}
        out[i : i + step] = _factor_chunk(part, data, spec, moments, grid)
    return out


def _moments(data: SessionData, spec: ModelSpec) -> dict[str, Any] | None:
    """The sums of products of complete series (``pm.Data`` names), or None where the known
    mean varies by session or a cell is missing or observed with error (the filter's case)."""
    complete = not (data.in_series & ~(data.observed_x & data.observed_y)).any()
    if not complete or spec.session_means or spec.measurement_error or spec.random_innovations:
        return None
    if spec.innovations == "session":
        return None
    loc = (float(np.nanmean(data.x)), float(np.nanmean(data.y)))
    return {**SeriesMoments.of(data, loc).containers(), "loc_x": loc[0], "loc_y": loc[1]}


@dataclass(frozen=True)
class _FilterGrid:
    """The grid as :func:`~bayes_alliance.kernels.kalman_batch_nb.batch_factor` reads it
    fastest: (S, P) arrays (a session's cells of all patients contiguous), passed transposed."""

    x: np.ndarray  # (S, P) values, 0 where not observed
    y: np.ndarray
    obs_x: np.ndarray  # (S, P) 1.0 where observed inside the series
    obs_y: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, data: SessionData) -> _FilterGrid:
        cells = SeriesGrid.of(data).gap_containers()
        return cls(
            cells["gap_predictor"],
            cells["gap_outcome"],
            cells["gap_observed_predictor"],
            cells["gap_observed_outcome"],
            cells["gap_first"],
        )


def _per_draw(entry: Any, n_b: int) -> np.ndarray:
    """An entry of the shared structure with the draws on its last axis ((B,) or (P, B)) as an
    array that broadcasts against (B, P): (B, 1) or (B, P); a fixed value as (B, 1)."""
    arr = np.asarray(entry, dtype=float)
    if arr.ndim == 0:
        return np.full((n_b, 1), float(arr))
    return arr[:, None] if arr.ndim == 1 else arr.T


def _factor_chunk(
    post: Mapping[str, np.ndarray],
    data: SessionData,
    spec: ModelSpec,
    moments: dict[str, Any] | None,
    grid: _FilterGrid | None,
) -> np.ndarray:
    """:func:`_factor_loglik` of one chunk of B draws (draws first), (B, P)."""
    n_b = len(post[v.INNOVATION_SD_OUTCOME])
    get = lookup(post, spec, draws_first=True)
    slope = post.get("state_effect_by_patient")  # (B, P) when slopes vary
    dyn_post, dyn_spec = own_innovations(post, spec, post)
    dyn = dynamics_from(
        lookup(dyn_post, dyn_spec, draws_first=True),
        dyn_spec,
        slope=None if slope is None else slope.T,
    )
    known = known_means(
        get,
        spec,
        baseline_values(data, spec),
        baseline_level(data, spec),
        tj=data.patient_therapist,
        zc=covariate_values(data, spec),
    )
    top = therapist_part(get, data.patient_therapist) if spec.therapist_level else (0.0, 0.0)
    a, b, c, d = (_per_draw(e, n_b) for e in dyn.phi)
    f11, f12, f22 = (_per_draw(e, n_b) for e in dyn.first)
    phi, first = (a, b, c, d), (f11, f12, f22)
    if moments is not None:
        # one known mean per patient: (P, B) or (B,), centred like the sums
        kx, ky = known.cells(np.zeros((1, 1)), per_patient=True)
        kx = _per_draw(kx + top[0], n_b) - moments["loc_x"]
        ky = _per_draw(ky + top[1], n_b) - moments["loc_y"]
        s11, s12, s22 = (_per_draw(e, n_b) for e in dyn.sigma)
        flat = replace(dyn, phi=phi, sigma=(s11, s12, s22))
        sums = moment_sums(moments, kx, ky, flat, xp=np)
        log_c, factor = marginal.series_factor(sums, phi, first)
    else:
        assert grid is not None
        log_c, factor = _filter_chunk(grid, known, top, dyn, phi, first, data, n_b)
    t11, t12, t22 = (_per_draw(e, n_b) for e in trait_cov(get, v.PATIENT))
    return log_c + marginal.mean_integral(factor, (0.0, 0.0), (t11, t12, t22))


def _filter_chunk(
    grid: _FilterGrid,
    known: Any,
    top: tuple[Any, Any],
    dyn: Any,
    phi: tuple[np.ndarray, ...],
    first: tuple[np.ndarray, ...],
    data: SessionData,
    n_b: int,
) -> tuple[np.ndarray, marginal.MeanFactor]:
    """``log C`` and the factor of every draw of a chunk (B, P each) by the forward filter
    kernel, its inputs in the forms the model's Op gives it
    (:func:`bayes_alliance.kernels.factor_op.factor_of`) with the draws first."""
    n_p, n_s = data.n_patients, data.n_sessions
    t = (data.sessions - data.sessions[0]).astype(float)
    # the known means as (B, S or 1, P)
    kx, ky = (_known_rows(k, n_b, n_p) for k in known.cells(t[:, None]))
    sig = [_columns(e, dyn.by_session, n_b, n_s) for e in dyn.sigma]
    err = [_cell_error(e, n_b, n_p, n_s) for e in dyn.error]
    lag = [np.ascontiguousarray(np.broadcast_to(e, (n_b, n_p))) for e in phi]
    start = [np.ascontiguousarray(np.broadcast_to(e, (n_b, n_p))) for e in first]
    # plus the therapist part: (B, S or 1, P)
    kx, ky = (
        np.ascontiguousarray(k + _per_draw(e, n_b)[:, None, :])
        for k, e in zip((kx, ky), top, strict=True)
    )
    out = batch_factor_draws(
        grid.x, grid.y, grid.obs_x, grid.obs_y, grid.first, kx, ky, *lag, *start, *sig, *err
    )
    return out[0], marginal.MeanFactor(*out[1:])


def _known_rows(entry: Any, n_b: int, n_p: int) -> np.ndarray:
    """A known mean of the shared structure ((B,), (P, B) or (P or 1, S or 1, B)) as
    (B, S or 1, P), the kernel's layout with the draws first (a view)."""
    arr = np.asarray(entry, dtype=float)
    if arr.ndim == 1:  # one value per draw
        arr = arr[None, None, :]
    elif arr.ndim == 2:  # one per patient and draw
        arr = arr[:, None, :]
    full = np.broadcast_to(arr, (n_p, arr.shape[1], n_b))
    return np.moveaxis(full, -1, 0).swapaxes(1, 2)


def _columns(entry: Any, by_session: bool, n_b: int, n_s: int) -> np.ndarray:
    """An innovation entry as the kernel's (B, R, S) rows, R = 1 (shared) or P (one per
    patient: random innovations); column t the transition into it (column 0 unused)."""
    arr = np.asarray(entry, dtype=float)
    if by_session:  # (S - 1, B)
        rows = np.concatenate([arr[:1], arr]).T[:, None, :]
    elif arr.ndim == 2:  # (P, B)
        rows = np.broadcast_to(arr.T[:, :, None], (n_b, arr.shape[0], n_s))
    else:
        rows = np.broadcast_to(np.broadcast_to(arr, (n_b,))[:, None, None], (n_b, 1, n_s))
    return np.ascontiguousarray(rows)


def _cell_error(entry: Any, n_b: int, n_p: int, n_s: int) -> np.ndarray:
    """A measurement-error variance as the kernel's (B, 1, 1) (one for every cell) or
    (B, P, S) (one per patient)."""
    arr = np.asarray(entry, dtype=float)
    if arr.ndim <= 1:
        return np.ascontiguousarray(np.broadcast_to(arr, (n_b,))[:, None, None])
    return np.ascontiguousarray(np.broadcast_to(arr.T[:, :, None], (n_b, n_p, n_s)))


def _filter(post: Mapping[str, np.ndarray], data: SessionData, spec: ModelSpec) -> np.ndarray:
    like = post[v.INNOVATION_SD_OUTCOME]  # in every model
    n_b, n_p, n_s = like.shape[0], data.n_patients, len(data.sessions)

    # The dynamics and the known part of each cell's mean (P, S) per draw, from the shared
    # structure with the draws moved to the last axis: intercept or session means, the average
    # trend (the trend deviations are in the filter's state: read as 0), the baseline's shift and
    # the therapist part of the latent mean (conditioned on).
    get = lookup(post, spec, draws_first=True)
    slope = post.get("state_effect_by_patient")  # (B, P) when slopes vary
    # each patient's innovation SDs, as drawn after sampling (random innovations)
    dyn_post, dyn_spec = own_innovations(post, spec, post)
    dyn = dynamics_from(
        lookup(dyn_post, dyn_spec, draws_first=True),
        dyn_spec,
        slope=None if slope is None else slope.T,
    )
    phi = tuple(np.broadcast_to(_draws_first(e, n_b).reshape(n_b, -1), (n_b, n_p)) for e in dyn.phi)
    first = tuple(_draws_first(e, n_b).reshape(n_b, -1) for e in dyn.first)
    sig_r = tuple(_draws_first(e, n_b) for e in dyn.sigma)  # (B,) or (B, S - 1)
    err = tuple(_draws_first(e, n_b) for e in dyn.error)  # measurement-error variances (B,)
    by_session = dyn.by_session
    t = (data.sessions - data.sessions[0]).astype(float)
    no_dev = {n: np.zeros((n_p, 1)) for n in ("trend_predictor_raw", "trend_outcome_raw")}
    known = known_means(
        lookup(post, spec, draws_first=True, given=no_dev),
        spec,
        baseline_values(data, spec),
        baseline_level(data, spec),
        tj=data.patient_therapist,
        zc=covariate_values(data, spec),
    )
    kx, ky = (
        _draws_first(np.broadcast_to(k, (n_p, n_s, n_b)), n_b) for k in known.cells(t[:, None])
    )
    if spec.therapist_level:
        top_x, top_y = therapist_part(get, data.patient_therapist)
        kx = kx + _draws_first(top_x, n_b)[..., None]
        ky = ky + _draws_first(top_y, n_b)[..., None]
    # Variables with indicators: their per-cell score and its error variance replace the
    # variable's value; their residual densities add to each patient's (B, P, S each).
    values = [np.broadcast_to(data.x, (n_b, n_p, n_s)), np.broadcast_to(data.y, (n_b, n_p, n_s))]
    cell_var = [np.zeros((n_b, n_p, n_s)), np.zeros((n_b, n_p, n_s))]
    ll = np.zeros((n_b, n_p))
    for k, (which, item) in enumerate(indicators.grids(data, spec).items()):
        k = v.VARIABLES.index(which)
        loading, intercept, sd = (
            np.asarray(post[n], dtype=float).T for n in indicators.NAMES[which]
        )
        eta, var, log_r = (
            np.moveaxis(e, -1, 0) for e in indicators.composite(item, loading, intercept, sd)
        )
        values[k] = np.where(np.isnan(values[k]), np.nan, eta)
        cell_var[k] = var
        ll += log_r.sum(axis=-1)
    zx = values[0] - kx
    zy = values[1] - ky

    # Initial state covariance: blocks for w_1 (F), M (T) and delta (D), independent.
    n = 6 if spec.trend else 4
    tau = trait_cov(get, v.PATIENT)
    p0 = np.zeros((n_b, n_p, n, n))
    p0[..., 0, 0], p0[..., 0, 1], p0[..., 1, 1] = first
    p0[..., 1, 0] = p0[..., 0, 1]
    p0[..., 2, 2], p0[..., 2, 3], p0[..., 3, 3] = (e[:, None] for e in tau)
    p0[..., 3, 2] = p0[..., 2, 3]
    if spec.trend:
        p0[..., 4, 4] = (post[v.SD_TREND_PREDICTOR] ** 2)[:, None]
        p0[..., 5, 5] = (post[v.SD_TREND_OUTCOME] ** 2)[:, None]

    f = np.zeros((n_b, n_p, n, n))  # transition: w block is Phi*, the rest constant
    f[..., 0, 0], f[..., 0, 1], f[..., 1, 0], f[..., 1, 1] = phi
    for k in range(2, n):
        f[..., k, k] = 1.0

    a = np.zeros((n_b, n_p, n))
    p = np.zeros((n_b, n_p, n, n))
    inside = data.in_series
    obs = (data.observed_x & inside, data.observed_y & inside)
    for c in range(n_s):
        start = data.first == c
        going = inside[:, c] & ~start
        if start.any():
            a[:, start] = 0.0
            p[:, start] = p0[:, start]
        if going.any():
            # (B, P) innovation entries: one per draw, or per patient and draw (random
            # innovations)
            q = np.zeros((n_b, n_p, n, n))
            s11, s12, s22 = (
                np.broadcast_to((e[:, c - 1] if by_session else e).reshape(n_b, -1), (n_b, n_p))
                for e in sig_r
            )
            q[..., 0, 0], q[..., 0, 1], q[..., 1, 1] = s11, s12, s22
            q[..., 1, 0] = s12
            fg = f[:, going]
            a[:, going] = np.einsum("bpij,bpj->bpi", fg, a[:, going])
            p[:, going] = fg @ p[:, going] @ np.swapaxes(fg, -1, -2) + q[:, going]
        for k, z in ((0, zx), (1, zy)):
            sel = obs[k][:, c]
            if not sel.any():
                continue
            h = np.zeros(n)
            h[k] = h[k + 2] = 1.0
            if spec.trend:
                h[k + 4] = t[c]
            ps = p[:, sel]
            ph = ps @ h  # (B, P', n)
            s = ph @ h  # (B, P')
            if spec.measurement_error:
                s = s + err[k][:, None]
            s = s + cell_var[k][:, sel, c]
            innov = z[:, sel, c] - a[:, sel] @ h
            ll[:, sel] += -0.5 * (LOG_2PI + np.log(s) + innov**2 / s)
            gain = ph / s[..., None]
            a[:, sel] = a[:, sel] + gain * innov[..., None]
            p[:, sel] = ps - gain[..., :, None] * ph[..., None, :]
    return ll


def _draws_first(entry: Any, n_b: int) -> np.ndarray:
    """An entry with the draws on its last axis (the shared structure's) as (B, ...); a fixed
    value (a path the model leaves out) as (B,)."""
    arr = np.asarray(entry, dtype=float)
    return np.full(n_b, arr) if arr.ndim == 0 else np.moveaxis(arr, -1, 0)
