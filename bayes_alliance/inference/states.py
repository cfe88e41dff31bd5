r"""States of chosen patients after sampling, from a completed posterior's latent means.

When a fit holds no states (data sets whose draws x patients x sessions grid is too large,
:func:`bayes_alliance.inference.fit.states_wanted`), :meth:`FitResult.states` computes them here
for the patients asked for: ``w = z - known mean - M`` from each draw's latent mean, or, with
measurement error or indicators, draws from the states' smoothing distribution as
:func:`bayes_alliance.inference.posthoc.complete` draws them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.posthoc import PosthocGrid, draw_arrays
from bayes_alliance.model.covariates import BaselineRows
from bayes_alliance.model.structure import (
    PATIENT_RAW,
    baseline_shift,
    covariate_shift,
    draws_last,
    instability_shift,
    lookup,
    slope_trait_shift,
)
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab


def latent_deviation(
    posterior: xr.Dataset,
    spec: ModelSpec,
    zb: BaselineRows | None,
    which: str,
    rows: np.ndarray | None = None,
    level: str = v.PATIENT,
    zc: np.ndarray | None = None,
    tj: np.ndarray | None = None,
) -> np.ndarray:
    """Each draw's latent mean minus its known part (intercept, baseline shift, instability
    shift with random innovations; the session
    means' average with session means), (chain, draw, patient), for the patients at ``rows``
    (default all; ``zb`` holds the baseline of those patients, ``level`` its level, which picks
    the trait effect of the shift, :func:`bayes_alliance.model.structure.baseline_shift`;
    ``zc`` the rows of the adjusting covariates of those patients,
    :func:`bayes_alliance.model.structure.covariate_shift`; ``tj`` their therapist codes, for
    the therapist slope deviation's shift, :func:`bayes_alliance.model.structure.slope_trait_shift`).

    The reported ``trait_*`` are whole latent means, so the baseline shift is taken off here:
    the known mean adds it back, and a state or replicate must count it once.
    """
    sel = slice(None) if rows is None else rows
    if f"patient_dev_{which}" in posterior:
        return np.asarray(posterior[f"patient_dev_{which}"].values)[..., sel]
    if spec.session_means:
        raise ValueError("session-mean models need the patient deviations in the posterior")
    intercept = v.INTERCEPT_PREDICTOR if which == v.PREDICTOR else v.INTERCEPT_OUTCOME
    dev = (
        np.asarray(posterior[f"trait_{which}"].values)[..., sel]
        - np.asarray(posterior[intercept].values)[..., None]
    )
    if zb is not None:
        shift = baseline_shift(lookup(draws_last(draw_arrays(posterior)), spec), zb, level)
        assert shift is not None
        part = shift[0] if which == v.PREDICTOR else shift[1]  # (patient, chain x draw)
        dev = dev - part.T.reshape(dev.shape)
    if zc is not None:
        moved = covariate_shift(lookup(draws_last(draw_arrays(posterior)), spec), zc)
        assert moved is not None
        part = moved[0] if which == v.PREDICTOR else moved[1]  # (patient, chain x draw)
        dev = dev - part.T.reshape(dev.shape)
    if tj is not None:  # the therapist parts' shift by the therapist's slope deviation
        moved = slope_trait_shift(lookup(draws_last(draw_arrays(posterior)), spec), spec, tj)
        if moved is not None:
            part = moved[0] if which == v.PREDICTOR else moved[1]  # (patient, chain x draw)
            dev = dev - part.T.reshape(dev.shape)
    if spec.random_innovations:  # the traits' shift by the patient's instability, G u_i
        moved = instability_shift(lookup(draws_last(draw_arrays(posterior)), spec), spec)
        assert moved is not None
        part = (moved[0] if which == v.PREDICTOR else moved[1])[sel]
        dev = dev - part.T.reshape(dev.shape)
    return dev


def states_of(
    posterior: xr.Dataset,
    data: SessionData,
    spec: ModelSpec,
    rows: np.ndarray,
    random_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The states ``w = z - known mean - M`` of the patients at ``rows`` for every draw, from
    the drawn latent means of a completed posterior: shape (chain, draw, len(rows), session).

    Without measurement error or indicators the states of observed cells are a function of the
    latent mean (no randomness); missing cells are NaN here (the imputed ones exist only where
    :func:`complete` drew them). With either, the states of observed cells are drawn from their
    smoothing distribution given the draw (seeded by ``random_seed``), as :func:`complete`
    draws them."""
    rows = np.asarray(rows, dtype=int)
    lay = PosthocGrid.of(data, spec)
    if spec.measurement_error or lay.indicators:
        return _smoothed_states(posterior, data, spec, lay, rows, random_seed)
    if lay.baseline is not None:
        lay.baseline = lay.baseline[rows]
    if lay.covariates is not None:
        lay.covariates = lay.covariates[rows]
    if lay.tj is not None:
        lay.tj = lay.tj[rows]
    arrays = draw_arrays(posterior)
    for n in PATIENT_RAW:
        if n in arrays:
            arrays[n] = arrays[n][..., rows]
    mx, my = (
        latent_deviation(
            posterior, spec, lay.baseline, w, rows, lay.baseline_level, lay.covariates, lay.tj
        )
        for w in v.VARIABLES
    )
    n_c, n_d = mx.shape[:2]
    wx = np.empty((n_c, n_d, len(rows), data.n_sessions))
    wy = np.empty_like(wx)
    for c in range(n_c):
        for d in range(n_d):
            p = {k: val[c, d] for k, val in arrays.items()}
            kx, ky = lay.known_cells(lookup(p, spec), spec, len(rows))
            zx, zy = data.x, data.y
            if lay.censored is not None:  # the draw's latent scores in censored cells
                grid = lay.grid_of(p)
                zx = np.where(np.isnan(data.x), np.nan, grid.x)
                zy = np.where(np.isnan(data.y), np.nan, grid.y)
            wx[c, d] = zx[rows] - kx - mx[c, d][:, None]
            wy[c, d] = zy[rows] - ky - my[c, d][:, None]
    inside = data.in_series[rows]
    return np.where(inside, wx, np.nan), np.where(inside, wy, np.nan)


def _smoothed_states(
    posterior: xr.Dataset,
    data: SessionData,
    spec: ModelSpec,
    lay: PosthocGrid,
    rows: np.ndarray,
    random_seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`states_of` with measurement error or indicators: every patient's states drawn by
    forward filtering and backward sampling per draw (per-patient dynamics, indicator scores
    and error variances as :func:`complete` has them), those at ``rows`` kept."""
    arrays = draw_arrays(posterior)
    mx, my = (
        latent_deviation(
            posterior, spec, lay.baseline, w, None, lay.baseline_level, lay.covariates, lay.tj
        )
        for w in v.VARIABLES
    )
    n_c, n_d = mx.shape[:2]
    wx = np.empty((n_c, n_d, len(rows), data.n_sessions))
    wy = np.empty_like(wx)
    rng = np.random.default_rng([random_seed, 20261206])
    inside = data.in_series
    for c in range(n_c):
        for d in range(n_d):
            p = {k: val[c, d] for k, val in arrays.items()}
            get = lookup(p, spec)
            dyn = lay.dynamics(get, spec)
            kx, ky = lay.known_cells(get, spec, data.n_patients)
            mean = (kx + mx[c, d][:, None], ky + my[c, d][:, None])
            ax, ay = lay.draw_states(get, mean, dyn, lay.grid_of(p), inside, rng)
            wx[c, d], wy[c, d] = ax[rows], ay[rows]
    # missing cells stay NaN here, as without error; cells outside a series too
    keep_x = (lay.grid.obs_x[rows] > 0) & inside[rows]
    keep_y = (lay.grid.obs_y[rows] > 0) & inside[rows]
    return np.where(keep_x, wx, np.nan), np.where(keep_y, wy, np.nan)


__all__ = ["latent_deviation", "states_of"]
