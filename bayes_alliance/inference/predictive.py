r"""Posterior predictive replicates of whole series, and the observed data they are checked
against, as ArviZ groups.

For every posterior draw, each patient's series is replicated from the model given that draw's
parameters and the patient's drawn latent mean ``M_i`` (and therapist part): new states follow
the within-person VAR(1) in reduced form,

.. math::

    w_{i1} \sim N(0, \Sigma_{first}), \qquad
    w_{it} = \Phi_i w_{i,t-1} + \varepsilon_{it}, \quad \varepsilon_{it} \sim N(0, \Sigma_t),

and the replicated scores are ``z_rep = known mean + M_i + w_rep`` (plus fresh measurement
error ``N(0, omega^2)`` in every cell when the model has it; known mean: the intercept or
session means plus the patient's trend and the baseline's shift,
:mod:`bayes_alliance.model.structure`; with a stated ceiling or floor a replicate beyond it is
recorded at it, as the data are). Replicates are kept at the observed cells only, in the
order of the pointwise log-likelihood (``observed_predictor_cell``, ``observed_outcome_cell``), so
that ``posterior_predictive`` and ``observed_data`` line up for ArviZ's checks of whole series
(``plot_ppc_dist``, ``plot_ppc_tstat``). They are whole new series given the latent mean, wider
than the one-step-ahead predictive the pointwise log-likelihood scores, so they are not for
LOO-PIT (which would then look overdispersed). Seeded; recomputed on load like the other
post-hoc draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.inference.posthoc import PosthocGrid, draw_arrays
from bayes_alliance.inference.states import latent_deviation
from bayes_alliance.inference.unit_group import posterior_of
from bayes_alliance.model.structure import Dynamics, lookup
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
CELL_DIMS = {v.PREDICTOR: "observed_predictor_cell", v.OUTCOME: "observed_outcome_cell"}


def _cell_coords(data: SessionData, which: str) -> dict[str, Any]:
    rows, cols = np.nonzero(data.observed_x if which == v.PREDICTOR else data.observed_y)
    dim = CELL_DIMS[which]
    return {
        dim: np.arange(len(rows)),
        f"{dim}_patient": (dim, np.asarray(data.coords[v.PATIENT], dtype=object)[rows].astype(str)),
        f"{dim}_session": (dim, np.asarray(data.coords[v.SESSION])[cols]),
    }


def observed_data(data: SessionData) -> xr.Dataset:
    """The observed scores at their cells (``predictor``, ``outcome``), each cell labelled with
    its patient and session."""
    out = {}
    for which, grid in ((v.PREDICTOR, data.x), (v.OUTCOME, data.y)):
        coords = _cell_coords(data, which)
        out[which] = xr.DataArray(grid[~np.isnan(grid)], dims=(CELL_DIMS[which],), coords=coords)
    return xr.Dataset(out)


def _entry(e: Any, n_p: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(e, dtype=float), (n_p,))


def _chol(v11: Any, v12: Any, v22: Any) -> tuple[Any, Any, Any]:
    """Lower Cholesky factor (l11, l21, l22) of 2 x 2 covariances given by entries."""
    l11 = np.sqrt(v11)
    l21 = v12 / l11
    rest = v22 - l21**2
    if np.any(~(l11 > 0)) or np.any(rest < -1e-12 * np.maximum(v22, 1.0)):
        raise ValueError("a covariance of the draw is not positive definite")
    return l11, l21, np.sqrt(np.maximum(rest, 0.0))


def _replicate_states(
    dyn: Dynamics, first: np.ndarray, n_s: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One replicate of every patient's state series on the grid: the first-session law at the
    patient's first column, the VAR(1) after it (with the innovation covariance of that grid
    column when it is session-specific), NaN before it."""
    n_p = len(first)
    # continuous time: the lag matrix and innovation covariance of each cell's interval
    a, b, c, d = (e if dyn.by_cell else _entry(e, n_p) for e in dyn.phi)
    f_chol = _chol(*(_entry(e, n_p) for e in dyn.first))
    s11, s12, s22 = (np.asarray(e, dtype=float) for e in dyn.sigma)
    wx, wy = np.full((n_p, n_s), np.nan), np.full((n_p, n_s), np.nan)
    for t in range(n_s):
        e1, e2 = rng.standard_normal((2, n_p))
        start, after = first == t, first < t
        x0, y0 = f_chol[0] * e1, f_chol[1] * e1 + f_chol[2] * e2
        if t:
            k = t - 1
            if dyn.by_cell:
                a, b, c, d = (e[:, t] for e in dyn.phi)
                m11, m21, m22 = _chol(*(e[:, t] for e in (s11, s12, s22)))
            else:
                m11, m21, m22 = _chol(*(e[k] if dyn.by_session else e for e in (s11, s12, s22)))
            px, py = wx[:, t - 1], wy[:, t - 1]
            x1 = a * px + b * py + m11 * e1
            y1 = c * px + d * py + m21 * e1 + m22 * e2
            wx[:, t] = np.where(start, x0, np.where(after, x1, np.nan))
            wy[:, t] = np.where(start, y0, np.where(after, y1, np.nan))
        else:
            wx[:, 0] = np.where(start, x0, np.nan)
            wy[:, 0] = np.where(start, y0, np.nan)
    return wx, wy


def _censor(rep: np.ndarray, spec: ModelSpec, which: str) -> np.ndarray:
    """Replicated scores recorded as the data are: at the limit when beyond a stated ceiling
    or floor (censoring)."""
    floor, ceiling = spec.bounds(which)
    if floor is None and ceiling is None:
        return rep
    return np.clip(rep, floor, ceiling)


def posterior_predictive(
    posterior: xr.Dataset,
    data: SessionData,
    spec: ModelSpec,
    random_seed: int,
    stream: int = 20261127,
) -> xr.Dataset:
    """Replicated ``predictor`` and ``outcome`` at the observed cells for every draw of a
    completed posterior (one holding the drawn latent means): dims (chain, draw, cell).

    Parameters
    ----------
    posterior
        Sampled parameters plus ``trait_*`` (or ``patient_dev_*``) draws.
    data, spec
        The fitted data and model.
    random_seed, stream
        Seed of the replicates and the stream drawn from it (independent of the sampler's and
        of the prior predictive's streams).
    """
    lay = PosthocGrid.of(data, spec)
    arrays = draw_arrays(posterior)
    # The baseline's shift is in the known mean: taken off the reported traits here.
    mx, my = (
        latent_deviation(
            posterior, spec, lay.baseline, w, None, lay.baseline_level, lay.covariates, lay.tj
        )
        for w in v.VARIABLES
    )
    obs_x, obs_y = np.nonzero(data.observed_x), np.nonzero(data.observed_y)
    n_c, n_d = mx.shape[:2]
    n_p, n_s = data.n_patients, data.n_sessions
    first = np.asarray(data.first)
    rep_x = np.empty((n_c, n_d, len(obs_x[0])))
    rep_y = np.empty((n_c, n_d, len(obs_y[0])))
    rng = np.random.default_rng([random_seed, stream])
    for ch in range(n_c):
        for dr in range(n_d):
            get = lookup({k: val[ch, dr] for k, val in arrays.items()}, spec)
            dyn = lay.dynamics(get, spec)
            kx, ky = lay.known_cells(get, spec, n_p)
            wx, wy = _replicate_states(dyn, first, n_s, rng)
            if spec.measurement_error:  # drawn only then: other models keep their streams
                ex, ey = rng.standard_normal((2, n_p, n_s))
                wx = wx + np.sqrt(dyn.error[0]) * ex
                wy = wy + np.sqrt(dyn.error[1]) * ey
            # The replicated score of a variable with indicators is its marker's: the latent
            # score plus the marker's residual.
            if spec.predictor_indicators:
                theta = np.ravel(get(v.INDICATOR_SD_PREDICTOR))[0]
                wx = wx + theta * rng.standard_normal((n_p, n_s))
            if spec.outcome_indicators:
                theta = np.ravel(get(v.INDICATOR_SD_OUTCOME))[0]
                wy = wy + theta * rng.standard_normal((n_p, n_s))
            rep_x[ch, dr] = _censor((kx + mx[ch, dr][:, None] + wx)[obs_x], spec, v.PREDICTOR)
            rep_y[ch, dr] = _censor((ky + my[ch, dr][:, None] + wy)[obs_y], spec, v.OUTCOME)
    out = {}
    for which, rep in ((v.PREDICTOR, rep_x), (v.OUTCOME, rep_y)):
        out[which] = xr.DataArray(
            rep, dims=("chain", "draw", CELL_DIMS[which]), coords=_cell_coords(data, which)
        )
    return xr.Dataset(out)


def add_groups(
    idata: xr.DataTree,
    data: SessionData,
    spec: ModelSpec,
    random_seed: int,
    replicate: bool = True,
) -> xr.DataTree:
    """Add the ``observed_data`` group and, with ``replicate``, the ``posterior_predictive``
    group to a DataTree whose posterior holds the drawn latent means."""
    idata["observed_data"] = xr.DataTree(observed_data(data))
    if replicate:
        pp = posterior_predictive(posterior_of(idata), data, spec, random_seed)
        idata["posterior_predictive"] = xr.DataTree(pp)
    return idata
