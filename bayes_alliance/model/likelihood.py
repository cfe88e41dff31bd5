"""The two likelihoods of the trait/state model, given its parameters.

``conditional_likelihood``: the latent means are parameters; every cell contributes
``p(x_t | past, M) p(y_t | x_t, past, M)``; observed cells are observed variables (PyMC records
their pointwise log-likelihood).

``integrated_likelihood``: the latent means are integrated out per patient in closed form
(:mod:`bayes_alliance.kernels.marginal`); the data enter as ``pm.Data`` containers so a compiled model can
be refitted to other data of the same layout.

The conditional likelihood completes a patient's series from the first to the last row with
imputation parameters for missing cells (a skipped session, a missing rating), so it gives the
exact joint density of the observed and imputed cells. The integrated likelihood integrates the
missing cells out too (a Kalman filter, :mod:`bayes_alliance.kernels.gaps`), so NUTS sees no parameter
per missing cell.

Scores at a ceiling or floor (censored, :class:`bayes_alliance.model.grid.Censored`) are exact
data augmentation on the integrated likelihood: :func:`complete_censored` puts each censored
cell's latent score, a parameter beyond the limit, into the grid the Kalman filter reads.
Integrating those parameters out of the joint density gives the censored-data likelihood, so
the other parameters' posterior is exactly the censored model's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core import vocab as v
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import marginal
from bayes_alliance.kernels.gaps import GapCells
from bayes_alliance.kernels.kalman_batch import batch_filter_factor_op
from bayes_alliance.kernels.kalman_op import filter_factor_op
from bayes_alliance.model import interval_sums, segments
from bayes_alliance.model.grid import (
    Censored,
    GridIndex,
    SeriesGrid,
    TherapistBlock,
    grid_sums,
    moment_sums,
    therapist_factors,
)
from bayes_alliance.model.structure import Dynamics

# Series with gaps through the filter vectorised across patients
# (:mod:`bayes_alliance.kernels.kalman_batch`); False: the reference Op of
# :mod:`bayes_alliance.kernels.kalman_op` (one patient per loop iteration), which
# ``benchmarks/gap_cost.py`` compares. Both give the same log density to rounding.
BATCHED_FILTER = True
# Simple models with gaps: complete patients through the sums of products, the others through
# the filter (:func:`~bayes_alliance.model.grid.mixed_containers`); False: every patient through
# the filter (read by :func:`bayes_alliance.model.build._series_source` at build time).
MIXED_PATH = True
# Simple models with gaps: series cut at their fully observed cells, short gaps as sums of
# products and the rest through the filter (:mod:`bayes_alliance.model.segments`); it takes
# precedence over ``MIXED_PATH``.
SEGMENT_PATH = True


def _completed_grids(
    grid_x: Any, grid_y: Any, miss_x: Any, miss_y: Any, n_missing: tuple[int, int], loc: tuple
) -> tuple[Any, Any]:
    """The (P, S) grids with the imputation parameters ``missing_*_offset`` in missing cells
    (sampled traits). ``miss_x`` / ``miss_y`` index the raveled grids; the offsets are from the
    data means, so the default start (0) is a plausible value."""
    out = []
    for grid, miss, n, role, centre in zip(
        (grid_x, grid_y), (miss_x, miss_y), n_missing, (v.PREDICTOR, v.OUTCOME), loc, strict=True
    ):
        if n:
            offset = pm.Flat(f"missing_{role}_offset", dims=f"missing_{role}_cell")
            grid = pt.set_subtensor(grid.ravel()[miss], centre + offset).reshape(grid.shape)
        out.append(grid)
    return out[0], out[1]


def complete_censored(cells: dict[str, Any], censored: Censored) -> dict[str, Any]:
    """The Kalman filter's containers (:meth:`SeriesGrid.gap_containers`) with each censored
    cell's latent score in the grid (in the current model).

    Per variable with censored cells: ``censored_<variable>_excess`` (``pm.HalfFlat``, dim
    ``censored_<variable>_cell``; log-transformed, its Jacobian added by PyMC) is how far the
    latent score lies beyond the limit, and the deterministic ``censored_<variable>_value`` =
    ``bound + side * excess`` is the score the filter reads. The flat prior makes the joint
    density of the data and these scores the integrand whose integral over the censored
    region is the censored-data likelihood. Index, limits and sides are ``pm.Data``
    containers, so a compiled model refits data with as many censored cells. The index is of
    the (P, S) grid, raveled; the filter's containers are (S, P), so it is transposed here."""
    out = dict(cells)
    for which, key in ((v.PREDICTOR, "gap_predictor"), (v.OUTCOME, "gap_outcome")):
        part = censored.cells[which]
        if not part.n:
            continue
        index, bound, side = (pm.Data(k, val) for k, val in part.containers(which).items())
        excess = pm.HalfFlat(f"censored_{which}_excess", dims=f"censored_{which}_cell")
        value = pm.Deterministic(
            f"censored_{which}_value", bound + side * excess, dims=f"censored_{which}_cell"
        )
        grid = out[key]  # (S, P): the index (patient, then session order) transposed
        n_s, n_p = grid.shape[0], grid.shape[1]
        at = (index % n_s) * n_p + index // n_s
        out[key] = pt.set_subtensor(grid.ravel()[at], value).reshape(grid.shape)
    return out


def _by_session(e: Any) -> Any:
    """A known mean or score shaped for the patient grid ((P, 1), (P, S), or a scalar) as a
    row or grid of the filter's transposed (S, P) grids."""
    e = pt.as_tensor_variable(e)
    return e.T if e.ndim == 2 else e[None, :] if e.ndim == 1 else e


def _filter_factor(
    cells: dict[str, Any],
    known_x: Any,
    known_y: Any,
    dyn: Dynamics,
    scores: dict[str, Any],
    prefix: str = "gap",
) -> tuple[Any, marginal.MeanFactor]:
    """Each patient's ``log C`` and mean factor through the Kalman filter, from the
    transposed (S, P) containers of :meth:`SeriesGrid.gap_containers`. The residual grids are
    formed in the (S, P) layout and handed to the Op as (P, S) views, so the vectorised kernel
    reads each session's cells contiguously (no copy)."""
    ox, oy = cells[f"{prefix}_observed_predictor"], cells[f"{prefix}_observed_outcome"]
    values, error = [], []
    names = ((v.PREDICTOR, f"{prefix}_predictor"), (v.OUTCOME, f"{prefix}_outcome"))
    for k, (which, name) in enumerate(names):
        if which in scores:  # several indicators: their score and its error variance
            values.append(_by_session(scores[which][0]))
            error.append(dyn.error[k] + scores[which][1])
        else:
            values.append(cells[name])
            error.append(dyn.error[k])
    gap = GapCells(
        ((values[0] - _by_session(known_x)) * ox).T,
        ((values[1] - _by_session(known_y)) * oy).T,
        ox.T,
        oy.T,
        cells[f"{prefix}_first"].T,
    )
    op = batch_filter_factor_op if BATCHED_FILTER else filter_factor_op
    return op(gap, dyn.phi, dyn.sigma, dyn.first, dyn.by_session, error=(error[0], error[1]))


def _mixed_factor(
    cells: dict[str, Any], known_x: Any, known_y: Any, dyn: Dynamics, loc: tuple[Any, Any]
) -> tuple[Any, marginal.MeanFactor]:
    """Each patient's ``log C`` and mean factor, complete series through the sums of products
    and series with gaps through the filter (:func:`~bayes_alliance.model.grid.mixed_containers`),
    back in patient order. ``known_x`` / ``known_y``: one known mean per patient (P,) or a
    scalar; per-patient dynamics entries (P,) are split like the patients."""
    groups = []
    for key in ("mixed_complete", "mixed_gapped"):
        rows = cells[key]

        def pick(e: Any, rows: Any = rows) -> Any:
            e = pt.as_tensor_variable(e)
            return e[rows] if e.ndim == 1 else e

        groups.append(
            (
                rows.shape[0],
                pick(known_x),
                pick(known_y),
                replace(
                    dyn,
                    phi=tuple(pick(e) for e in dyn.phi),
                    first=tuple(pick(e) for e in dyn.first),
                ),
            )
        )
    (n_c, kx_c, ky_c, dyn_c), (n_g, kx_g, ky_g, dyn_g) = groups
    sums = moment_sums(cells, kx_c - loc[0], ky_c - loc[1], dyn_c)
    lc_c, f_c = marginal.series_factor(sums, dyn_c.phi, dyn_c.first, xp=pt)
    lc_g, f_g = _filter_factor(
        cells, pt.as_tensor_variable(kx_g)[:, None] if kx_g.ndim else kx_g,
        pt.as_tensor_variable(ky_g)[:, None] if ky_g.ndim else ky_g, dyn_g, {},
    )  # fmt: skip
    order = cells["mixed_order"]

    def merge(c: Any, g: Any) -> Any:
        both = [pt.broadcast_to(c, (n_c,)), pt.broadcast_to(g, (n_g,))]
        return pt.concatenate(both)[order]

    fields = ("l11", "l12", "l22", "g1", "g2", "q")
    factor = marginal.MeanFactor(*(merge(getattr(f_c, k), getattr(f_g, k)) for k in fields))
    return merge(lc_c, lc_g), factor


def _segment_factor(
    cells: dict[str, Any], known_x: Any, known_y: Any, dyn: Dynamics, loc: tuple[Any, Any]
) -> tuple[Any, marginal.MeanFactor]:
    """Each patient's ``log C`` and mean factor on the segment path
    (:mod:`bayes_alliance.model.segments`): the closed-form pieces plus the filtered stretches,
    each added to its patient. ``known_x`` / ``known_y``: one known mean per patient (P,) or a
    scalar; per-patient dynamics entries (P,) are picked per stretch."""
    lc, factor = segments.piece_factor(
        cells, (known_x - loc[0], known_y - loc[1]), dyn.phi, dyn.sigma, dyn.first, xp=pt
    )
    owner = cells["segment_patient"]

    def pick(e: Any) -> Any:
        e = pt.as_tensor_variable(e)
        return e[owner] if e.ndim == 1 else e

    def column(e: Any) -> Any:
        e = pick(e)
        return e[:, None] if e.ndim else e

    part = replace(
        dyn, phi=tuple(pick(e) for e in dyn.phi), first=tuple(pick(e) for e in dyn.first)
    )
    lc_s, f_s = _filter_factor(cells, column(known_x), column(known_y), part, {}, prefix="segment")

    def add(total: Any, each: Any) -> Any:
        return pt.inc_subtensor(pt.broadcast_to(total, lc.shape)[owner], each)

    lc = pt.as_tensor_variable(lc)
    fields = ("l11", "l12", "l22", "g1", "g2", "q")
    return add(lc, lc_s), marginal.MeanFactor(
        *(add(getattr(factor, k), getattr(f_s, k)) for k in fields)
    )


def integrated_likelihood(
    cells: dict[str, Any],
    n_sessions: int,
    known_x: Any,
    known_y: Any,
    dyn: Dynamics,
    tau: tuple[Any, Any, Any],
    loc: tuple[Any, Any],
    therapist: TherapistBlock | None = None,
    scores: dict[str, Any] | None = None,
) -> None:
    """Add the closed-form marginal likelihood (latent means, missing cells, and therapist
    deviations when ``therapist`` is given, integrated out) to the model as the potential
    ``integrated_series``.

    ``cells`` holds the ``pm.Data`` containers of :meth:`SeriesMoments.containers` (complete
    series with a per-patient known mean), of :meth:`SeriesGrid.containers` (complete series,
    any known mean) or of :meth:`SeriesGrid.gap_containers` (series with missing cells: the
    Kalman filter of :mod:`bayes_alliance.kernels.gaps` as the numba Op of
    :mod:`bayes_alliance.kernels.kalman_op`; the only path for a model with measurement error,
    whose errors are the filter's observation noise).
    ``known_x`` / ``known_y`` are the known part of each cell's mean (intercept or session
    means, trend), broadcastable to the grid; ``tau`` the patient-level covariance of the
    latent means.
    """
    rest: Any = 0.0  # terms free of the latent means, summed over patients (interval sums)
    if interval_sums.KEY in cells:
        known = (known_x - loc[0], known_y - loc[1])
        log_c, factor, rest = interval_sums.interval_factor(
            cells, known, dyn.phi, dyn.sigma, dyn.first, xp=pt
        )
    elif "segment_patient" in cells:
        log_c, factor = _segment_factor(cells, known_x, known_y, dyn, loc)
    elif "mixed_order" in cells:
        log_c, factor = _mixed_factor(cells, known_x, known_y, dyn, loc)
    elif "moment_n" in cells:
        sums = moment_sums(cells, known_x - loc[0], known_y - loc[1], dyn)
        log_c, factor = marginal.series_factor(sums, dyn.phi, dyn.first, xp=pt)
    elif "gap_first" in cells:
        log_c, factor = _filter_factor(cells, known_x, known_y, dyn, scores or {})
    else:
        zx, zy = cells["grid_predictor"], cells["grid_outcome"]
        sums = grid_sums(zx - known_x, zy - known_y, cells, dyn)
        log_c, factor = marginal.series_factor(sums, dyn.phi, dyn.first, xp=pt)
    if therapist is None:
        ll = (log_c + marginal.mean_integral(factor, (0.0, 0.0), tau, xp=pt)).sum()
    else:
        const, pseudo = marginal.pseudo_observation(factor, tau, xp=pt)
        caseloads = therapist_factors(pseudo, therapist)
        ll = (log_c + const).sum() + marginal.mean_integral(
            caseloads, (0.0, 0.0), therapist.tau, xp=pt
        ).sum()
    pm.Potential("integrated_series", ll + rest)


def conditional_likelihood(
    data: SessionData,
    idx: GridIndex,
    m_x: Any,
    m_y: Any,
    dyn: Dynamics,
    loc: tuple[Any, Any],
    store_states: bool,
) -> None:
    """Add the likelihood given the latent means ``m_x``, ``m_y`` ((P, 1) or (P, S)) to the model."""
    n_pat, n_ses = data.x.shape

    def flat(g: Any, cells: tuple[np.ndarray, np.ndarray]) -> Any:
        # 1-D gathers: their gradients are 1-D scatter-adds, cheaper than 2-D fancy indexing.
        return g.ravel()[np.ravel_multi_index(cells, (n_pat, n_ses))]

    grid = SeriesGrid.of(data)
    zx, zy = _completed_grids(
        pt.as_tensor(grid.x),
        pt.as_tensor(grid.y),
        grid.miss_x,
        grid.miss_y,
        (len(idx.miss_x[0]), len(idx.miss_y[0])),
        loc,
    )
    wx = zx - m_x
    wy = zy - m_y
    if store_states:
        inside = pt.as_tensor(idx.inside)
        pm.Deterministic(
            "state_predictor", pt.switch(inside, wx, np.nan), dims=(v.PATIENT, v.SESSION)
        )
        pm.Deterministic(
            "state_outcome", pt.switch(inside, wy, np.nan), dims=(v.PATIENT, v.SESSION)
        )

    def cell_sigma(val: Any) -> Any:
        # Session-specific innovations are indexed by transition column (into sessions 2..S);
        # the first column never has a transition, so any value serves there.
        if not dyn.by_session:
            return val
        return pt.concatenate([val[:1], val])[None, :]

    col = dyn.per_patient
    a, b, c, d = dyn.phi
    s11, s12, s22 = (cell_sigma(e) for e in dyn.sigma)
    f11, f12, f22 = dyn.first
    wx_prev = pt.concatenate([pt.zeros((n_pat, 1)), wx[:, :-1]], axis=1)
    wy_prev = pt.concatenate([pt.zeros((n_pat, 1)), wy[:, :-1]], axis=1)
    first = pt.as_tensor(idx.first)
    lag_x = pt.switch(first, 0.0, col(a) * wx_prev + col(b) * wy_prev)
    lag_y = pt.switch(first, 0.0, col(c) * wx_prev + col(d) * wy_prev)
    v_x = pt.switch(first, col(f11), col(s11))
    c_xy = pt.switch(first, col(f12), col(s12))
    v_y = pt.switch(first, col(f22), col(s22))
    k = c_xy / v_x
    mean_x = m_x + lag_x
    sd_x = pt.sqrt(v_x) * pt.ones((n_pat, n_ses))
    mean_y = m_y + lag_y + k * (wx - lag_x)
    sd_y = pt.sqrt(v_y - k * c_xy) * pt.ones((n_pat, n_ses))

    pm.Normal(
        v.PREDICTOR,
        mu=flat(mean_x, idx.obs_x),
        sigma=flat(sd_x, idx.obs_x),
        observed=data.x[idx.obs_x],
        dims="observed_predictor_cell",
    )
    pm.Normal(
        v.OUTCOME,
        mu=flat(mean_y, idx.obs_y),
        sigma=flat(sd_y, idx.obs_y),
        observed=data.y[idx.obs_y],
        dims="observed_outcome_cell",
    )
    missing_logp = pt.constant(0.0)
    if len(idx.miss_x[0]):
        missing_logp += pm.logp(
            pm.Normal.dist(flat(mean_x, idx.miss_x), flat(sd_x, idx.miss_x)),
            flat(zx, idx.miss_x),
        ).sum()
    if len(idx.miss_y[0]):
        missing_logp += pm.logp(
            pm.Normal.dist(flat(mean_y, idx.miss_y), flat(sd_y, idx.miss_y)),
            flat(zy, idx.miss_y),
        ).sum()
    pm.Potential("missing_cells", missing_logp)
