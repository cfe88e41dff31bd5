r"""After sampling: draw what the sampler integrated out, and derive what depends on it.

With integrated traits the sampler sees neither the therapist deviations nor the patients'
latent means. Given the other parameters of a posterior draw both are Gaussian
(:mod:`bayes_alliance.kernels.marginal`), so for every draw, in numpy (no model is built or compiled):

1. each patient's series gives a factor in the patient's therapist part; a therapist's factors
   add up, and the therapist part ``(a_x, a_y + trait_effect_therapist a_x)`` is drawn from its
   conditional posterior (three levels);
2. each patient's latent mean is drawn from its conditional posterior given that draw;
3. the states ``w = z - known mean - M`` (NaN outside a series; at missing cells inside a series
   drawn from their conditional distribution when ``impute`` is asked for, by forward filtering
   and backward sampling, else NaN; with measurement error every state is such a draw, since
   ``z - known mean - M`` is the state plus error), each patient's structural state effect, and optionally the
   pointwise log-likelihood of every observed cell given the latent mean and the patient's
   earlier observed cells (the one-step-ahead conditional score of
   :mod:`bayes_alliance.analysis.comparison`; the Kalman filter's prediction errors when cells are
   missing) follow.

With scores censored at a ceiling or floor the sampler drew each censored cell's latent score
(``censored_predictor_value``, ``censored_outcome_value``); every step above reads the grid
completed with the draw's scores, and the pointwise log-likelihood of a censored cell is the log
probability of its event given the earlier (completed) cells, ``log Phi(side (mean - bound) /
sd)``, not a density.

The joint draws are exact draws from the posterior of the model with sampled traits and
therapist deviations. Everything is seeded by ``random_seed``. The dynamics and the known means
of a draw are :mod:`bayes_alliance.model.structure`'s, the arithmetic the model builder uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.effects import continuous as ct_effects
from bayes_alliance.inference.filter_draws import (
    compiled_filter,
    filter_cells,
    gap_factor,
)
from bayes_alliance.inference.state_group import move_states
from bayes_alliance.inference.unit_group import merge_unit_draws, move_unit_draws
from bayes_alliance.kernels import gaps, marginal
from bayes_alliance.kernels.gaps import GapCells
from bayes_alliance.model import continuous, indicators, interval_sums
from bayes_alliance.model.covariates import (
    BaselineRows,
    baseline_level,
    baseline_values,
    covariate_values,
    moderator_values,
)
from bayes_alliance.model.grid import (
    Censored,
    GridIndex,
    SeriesGrid,
    TherapistBlock,
    censored_cells,
    grid_sums,
    therapist_factors,
)
from bayes_alliance.model.structure import (
    Dynamics,
    Get,
    KnownMeans,
    dynamics_from,
    known_means,
    lookup,
    slope_trait_loadings,
    therapist_raw,
    trait_cov,
)
from bayes_alliance.model.variability import BY_PATIENT
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
LOG_2PI = float(np.log(2 * np.pi))


def _draw(moments: tuple[Any, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return marginal.draw_means(moments, rng)


@dataclass
class PosthocGrid:
    """What the data fix once for all draws: the grid and its containers, the session offsets
    of trends, the covariate rows (moderators, baseline) and therapist codes of the patients."""

    grid: SeriesGrid
    idx: GridIndex
    cells: dict[str, np.ndarray]
    t: np.ndarray
    z: np.ndarray | None
    # missing cells inside a series, or measurement error: the Kalman filter replaces the sums
    gaps: bool
    # Centred baseline characteristics of each patient (patients x columns; a therapist-level
    # baseline's rows are those of the patient's therapist; a patient-level one of three-level
    # data split into within- and between-therapist rows) and their level.
    baseline: BaselineRows | None = None
    baseline_level: str = v.PATIENT
    tj: np.ndarray | None = None  # therapist code of each patient
    # Variables with several indicators (their grids; the filter reads their per-cell scores).
    indicators: dict[str, indicators.IndicatorGrid] = field(default_factory=dict)
    # cells at a ceiling or floor (None: none), whose latent scores each draw holds
    censored: Censored | None = None
    # Centred rows of the covariates that adjust the latent means (patients x columns), or None.
    covariates: np.ndarray | None = None
    # continuous time: each cell's interval (model.continuous.Intervals), else None
    intervals: dict[str, np.ndarray] | None = None
    # The cells between each patient's first and last session (None: read from the grid's
    # first and last cells once, not per draw).
    in_series: np.ndarray | None = None
    # continuous time on the model's sums-of-products path (model.interval_sums): its
    # containers and the location they are centred at, else None
    interval_sums: dict[str, np.ndarray] | None = None
    interval_loc: tuple[float, float] = (0.0, 0.0)
    # continuous time, complete series without measurement error: each patient's factor in
    # closed form from the cells (marginal.cell_factor), no filter
    complete_cells: bool = False
    # the grid's masks (observed x, observed y, first cell) in the memory order a filter
    # kernel reads ("F": (S, P) arrays seen as (P, S), the batched kernel; "C": row-major),
    # laid out on first use from ``grid``, whose masks every draw shares (censored cells
    # change values, not masks)
    masks: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def inside(self) -> np.ndarray:
        """Bool grid: the cell lies between its patient's first and last session."""
        if self.in_series is None:
            # a series' cells are its first and those reached by a transition
            g = self.grid
            reached = np.concatenate([np.zeros((len(g.first), 1)), g.transition], axis=1)
            self.in_series = (g.first > 0) | (reached > 0)
        return self.in_series

    @classmethod
    def of(cls, data: SessionData, spec: ModelSpec) -> PosthocGrid:
        grid = SeriesGrid.of(data)
        items = indicators.grids(data, spec)
        censored = censored_cells(data, spec) if spec.censored else None
        if censored is not None and not censored.any:
            censored = None
        ct = spec.time_model == "continuous"
        sums = None
        loc = (0.0, 0.0)
        if interval_sums.applies(data, spec):
            loc = (float(np.nanmean(data.x)), float(np.nanmean(data.y)))
            sums = interval_sums.IntervalSums.of(data, loc).containers()
        return cls(
            grid=grid,
            idx=GridIndex.of(data),
            cells=grid.containers(),
            t=(data.sessions - data.sessions[0]).astype(float),
            z=moderator_values(data, spec),
            gaps=bool(grid.miss_x.size or grid.miss_y.size)
            or spec.measurement_error
            or bool(spec.random_innovations)
            or bool(items)
            or censored is not None
            or ct,  # one lag matrix per cell: the filter
            baseline=baseline_values(data, spec),
            baseline_level=baseline_level(data, spec),
            tj=data.patient_therapist,
            indicators=items,
            censored=censored,
            covariates=covariate_values(data, spec),
            intervals=continuous.Intervals.of(data).containers() if ct else None,
            interval_sums=sums,
            interval_loc=loc,
            complete_cells=ct
            and interval_sums.complete(data)
            and not (
                spec.measurement_error or spec.random_innovations or items or censored is not None
            ),
        )

    def censored_values(self, p: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One draw's latent scores of the censored cells, by variable."""
        assert self.censored is not None
        return {
            w: np.asarray(p[f"censored_{w}_value"])
            for w, cells in self.censored.cells.items()
            if cells.n
        }

    def grid_of(self, p: Mapping[str, Any]) -> SeriesGrid:
        """The grid of the draw ``p``: censored cells hold that draw's latent scores."""
        if self.censored is None:
            return self.grid
        return self.grid.completed(self.censored, self.censored_values(p))

    def dynamics(self, get: Get, spec: ModelSpec) -> Dynamics:
        """The reduced-form dynamics of the draw(s) ``get`` reads
        (:func:`bayes_alliance.model.structure.dynamics_from`; continuous time:
        :func:`bayes_alliance.model.continuous.posthoc_dynamics`)."""
        if self.intervals is not None:
            return continuous.posthoc_dynamics(get, spec, self.intervals, self.z, self.tj)
        return dynamics_from(get, spec, z=self.z, tj=self.tj)

    def known(self, get: Get, spec: ModelSpec) -> KnownMeans:
        """The known part of the means: intercepts or session means, trends, the baseline's,
        the covariates' and the therapist slope deviations' shifts."""
        return known_means(
            get, spec, self.baseline, self.baseline_level, zc=self.covariates, tj=self.tj
        )

    def cells_of(self, known: KnownMeans, n_p: int) -> tuple[Any, Any]:
        """Known part of each cell's mean of one draw, (n_p, 1) or (n_p, S) (``baseline``
        holds the rows of the ``n_p`` patients)."""
        kx, ky = known.cells(self.t)
        return kx + np.zeros((n_p, 1)), ky + np.zeros((n_p, 1))

    def scores(
        self,
        get: Get,
        kx: Any,
        ky: Any,
        dyn: Dynamics,
        grid: SeriesGrid | None = None,
        order: Literal["F", "C"] = "C",
    ) -> tuple[GapCells, tuple[Any, Any], dict[str, Any]]:
        """The filter's cells with the known means subtracted, each variable's error variances
        (``dyn.error`` plus, with indicators, the per-cell variance of their score) and the
        indicators' residual log densities per cell (by variable), for the draw ``get`` reads
        (``grid``: the draw's grid, :meth:`grid_of`, when cells are censored); the grids in
        memory ``order`` ("F" for :func:`~bayes_alliance.inference.filter_draws.gap_filter`)."""
        grid = self.grid if grid is None else grid
        values = [grid.x, grid.y]
        error = list(dyn.error)
        resid: dict[str, Any] = {}
        for k, which in enumerate(v.VARIABLES):
            item = self.indicators.get(which)
            if item is None:
                continue
            loading, intercept, sd = (
                np.asarray(get(n), dtype=float) for n in indicators.NAMES[which]
            )
            eta, var, resid[which] = indicators.composite(item, loading, intercept, sd)
            values[k], error[k] = eta, error[k] + var
        if order not in self.masks:
            g = self.grid
            self.masks[order] = (
                np.asarray(g.obs_x, order=order),
                np.asarray(g.obs_y, order=order),
                np.asarray(g.first, order=order),
            )
        ox, oy, first = self.masks[order]
        cells = GapCells(
            np.multiply(values[0] - kx, ox, order=order),
            np.multiply(values[1] - ky, oy, order=order),
            ox,
            oy,
            first,
        )
        return cells, (error[0], error[1]), resid

    def known_cells(self, get: Get, spec: ModelSpec, n_p: int) -> tuple[Any, Any]:
        """:meth:`cells_of` the draw ``get`` reads."""
        return self.cells_of(self.known(get, spec), n_p)

    def draw_states(
        self,
        get: Get,
        mean: tuple[Any, Any],
        dyn: Dynamics,
        grid: SeriesGrid,
        inside: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every patient's states (w_x, w_y) of the draw ``get`` reads, (P, S) each, drawn
        given the observed cells by forward filtering, backward sampling
        (:func:`bayes_alliance.kernels.gaps.draw_missing`): ``mean`` is each cell's whole mean
        (known part plus the drawn latent mean), ``grid`` the draw's grid (:meth:`grid_of`),
        ``inside`` the cells between each patient's first and last session (NaN elsewhere)."""
        cells, error, _ = self.scores(get, mean[0], mean[1], dyn, grid)
        return gaps.draw_missing(
            cells,
            dyn.phi,
            dyn.sigma,
            dyn.first,
            dyn.by_session,
            inside,
            rng,
            error=error,
            by_cell=dyn.by_cell,
        )


def _one_draw(
    p: Mapping[str, Any],
    spec: ModelSpec,
    data: SessionData,
    lay: PosthocGrid,
    rng: np.random.Generator,
    log_likelihood: bool,
    impute: bool,
    states: bool = True,
) -> dict[str, np.ndarray]:
    get = lookup(p, spec)
    dyn = lay.dynamics(get, spec)
    known = lay.known(get, spec)
    kx, ky = lay.cells_of(known, data.n_patients)
    grid = lay.grid_of(p)
    zx, zy = grid.x, grid.y
    inn: dict[str, gaps.Innovations] | None = None
    resid: dict[str, Any] = {}
    if lay.interval_sums is not None and not log_likelihood:
        # continuous time, complete series: the model's sums per distinct interval
        isums = lay.interval_sums
        per = continuous.continuous_dynamics(
            get, spec, {"interval_values": isums["interval_values"]}
        )
        known_k = (kx[:, 0] - lay.interval_loc[0], ky[:, 0] - lay.interval_loc[1])
        _, factor, _ = interval_sums.interval_factor(isums, known_k, per.phi, per.sigma, per.first)
    elif lay.complete_cells:
        # continuous time, complete series: each cell's lag matrix, no filter
        _, factor = marginal.cell_factor(
            zx - kx, zy - ky, dyn.phi, dyn.sigma, dyn.first, lay.idx.first, lay.inside
        )
    elif lay.gaps:
        batched = not log_likelihood and compiled_filter(dyn)
        cells, error, resid = lay.scores(get, kx, ky, dyn, grid, "F" if batched else "C")
        if batched:
            factor = gap_factor(cells, dyn, error)
        else:
            _, factor, inn = filter_cells(cells, dyn, error, innovations=log_likelihood)
    else:
        sums = grid_sums(zx - kx, zy - ky, lay.cells, dyn, xp=np)
        _, factor = marginal.series_factor(sums, dyn.phi, dyn.first)
    tau = trait_cov(get, v.PATIENT)
    out: dict[str, np.ndarray] = {}
    m0: tuple[Any, Any] = (0.0, 0.0)
    if spec.therapist_level:
        assert data.therapists is not None and data.patient_therapist is not None
        tau_t = trait_cov(get, v.THERAPIST)
        beta_t = get(v.TRAIT_EFFECT_THERAPIST)
        tj = data.patient_therapist
        _, pseudo = marginal.pseudo_observation(factor, tau)
        caseloads = therapist_factors(pseudo, TherapistBlock(tj, len(data.therapists), tau_t), np)
        a_x, a_tot = _draw(marginal.mean_given(caseloads, (0.0, 0.0), tau_t), rng)
        out["therapist_dev_predictor_raw"], out["therapist_dev_outcome_raw"] = therapist_raw(
            get, a_x, a_tot
        )
        m0 = (a_x[tj], a_tot[tj])
        # The reported parts are whole: with therapist slopes the slope's known shift (in the
        # known means, not in the drawn deviations) is added back.
        g_x, g_y = slope_trait_loadings(get)
        if v.THERAPIST in spec.random_slopes:
            c_raw = get("state_effect_therapist_raw")
            a_x, a_tot = a_x + g_x * c_raw, a_tot + g_y * c_raw
        out["therapist_dev_predictor"] = a_x
        out["therapist_dev_outcome"] = a_tot - beta_t * a_x
    mx, my = _draw(marginal.mean_given(factor, m0, tau), rng)
    # The reported traits are the whole latent means: the baseline's shift is part of them
    # (it is in the known mean kx, ky, not in the drawn deviations mx, my).
    lx, ly = known.level()
    if spec.session_means:
        out["patient_dev_predictor"], out["patient_dev_outcome"] = mx, my
    out["trait_predictor"] = lx + mx
    out["trait_outcome"] = ly + my
    inside = lay.inside
    if spec.store_states and states:
        wx = zx - kx - mx[:, None]
        wy = zy - ky - my[:, None]
        # With measurement error no state is observed: all are drawn from their smoothing
        # distribution, so that patterns and trends carry the error's uncertainty.
        noisy = spec.measurement_error or bool(lay.indicators)
        if lay.gaps and (impute or noisy):
            mean = (kx + mx[:, None], ky + my[:, None])
            wx, wy = lay.draw_states(get, mean, dyn, grid, inside, rng)
        out["state_predictor"] = np.where(inside & ((lay.grid.obs_x > 0) | impute), wx, np.nan)
        out["state_outcome"] = np.where(inside & ((lay.grid.obs_y > 0) | impute), wy, np.nan)
    if dyn.varying:
        out["state_effect_by_patient"] = dyn.slope
    if dyn.sigma_varying:  # each patient's structural innovation SDs (their instability)
        assert dyn.parts is not None
        for k, own in zip((0, 2), BY_PATIENT.values(), strict=True):
            out[own] = np.sqrt(dyn.parts.sigma[k])
    if log_likelihood:
        if inn is not None:
            # a cell's indicators: their score's density plus their residual density
            lx = inn["x"].loglik(mx[:, None], my[:, None]) + resid.get(v.PREDICTOR, 0.0)
            ly = inn["y"].loglik(mx[:, None], my[:, None]) + resid.get(v.OUTCOME, 0.0)
            if lay.censored is not None:  # censored cells: the log probability of the event
                lls = {"x": lx, "y": ly}
                for which, value in lay.censored_values(p).items():
                    key = "x" if which == v.PREDICTOR else "y"
                    lls[key] = lay.censored.log_probability(
                        which,
                        lls[key],
                        value,
                        inn[key].error(mx[:, None], my[:, None]),
                        inn[key].s,
                    )
                lx, ly = lls["x"], lls["y"]
        else:
            lx, ly = cell_loglik(zx - kx - mx[:, None], zy - ky - my[:, None], dyn, lay)
        out["ll_predictor"] = lx[lay.idx.obs_x]
        out["ll_outcome"] = ly[lay.idx.obs_y]
    return out


def cell_loglik(
    wx: np.ndarray, wy: np.ndarray, dyn: Dynamics, lay: PosthocGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Log density of every cell's predictor and outcome state given the patient's previous
    states: ``p(x_t | past) p(y_t | x_t, past)`` in the reduced form (the first cell from the
    first-session covariance): the numpy twin of the sampled-traits likelihood."""
    n_p = wx.shape[0]
    first = lay.idx.first
    a, b, c, d = (dyn.per_patient(e) for e in dyn.phi)

    def cell_sigma(val: Any) -> Any:
        if not dyn.by_session:
            return val
        return np.concatenate([val[:1], val])[None, :]

    s11, s12, s22 = (cell_sigma(e) for e in dyn.sigma)
    f11, f12, f22 = (dyn.per_patient(e) for e in dyn.first)
    wx_prev = np.concatenate([np.zeros((n_p, 1)), wx[:, :-1]], axis=1)
    wy_prev = np.concatenate([np.zeros((n_p, 1)), wy[:, :-1]], axis=1)
    lag_x = np.where(first, 0.0, a * wx_prev + b * wy_prev)
    lag_y = np.where(first, 0.0, c * wx_prev + d * wy_prev)
    v_x = np.where(first, f11, s11)
    c_xy = np.where(first, f12, s12)
    v_y = np.where(first, f22, s22)
    k = c_xy / v_x
    r_x = wx - lag_x
    r_y = wy - lag_y - k * r_x
    var_y = v_y - k * c_xy
    lx = -0.5 * (LOG_2PI + np.log(v_x) + r_x**2 / v_x)
    ly = -0.5 * (LOG_2PI + np.log(var_y) + r_y**2 / var_y)
    return lx, ly


POSTERIOR_NAMES = (
    *vocab.NAMED_PARAMETERS,
    "state_effect_therapist_raw",
    "state_effect_patient_raw",
    "trend_predictor_raw",
    "trend_outcome_raw",
    "session_mean_predictor",
    "session_mean_outcome",
    "first_sd_predictor",
    "first_sd_outcome",
    "first_corr",
    "log_innovation_predictor_patient_raw",
    "log_innovation_outcome_patient_raw",
    "log_innovation_predictor_therapist_raw",
    "log_innovation_outcome_therapist_raw",
    "censored_predictor_value",
    "censored_outcome_value",
)


def draw_arrays(posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """The arrays (chain, draw, ...) of the parameters the post-hoc draws read
    (:data:`POSTERIOR_NAMES`) that the posterior has."""
    return {n: np.asarray(posterior[n].values) for n in POSTERIOR_NAMES if n in posterior}


def complete(
    posterior: xr.Dataset,
    data: SessionData,
    spec: ModelSpec,
    random_seed: int,
    log_likelihood: bool = False,
    impute: bool = False,
    states: bool = True,
) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray]]:
    """Draw the integrated-out quantities for every posterior draw and derive the rest
    (``impute``: draw the states of missing cells inside a series too; else they are NaN;
    ``states``: False leaves the states out, for data sets whose draws x patients x sessions
    grid does not fit in memory: :func:`states_of` computes them for chosen patients).

    Returns
    -------
    posterior_vars, log_likelihood_vars
        DataArrays (chain, draw, ...) to add to the posterior, and (with ``log_likelihood``)
        the pointwise log-likelihood of every observed cell (``predictor``, ``outcome``).
    """
    lay = PosthocGrid.of(data, spec)
    arrays = draw_arrays(posterior)
    n_c, n_d = posterior.sizes["chain"], posterior.sizes["draw"]
    rng = np.random.default_rng([random_seed, 20261126])
    # Filled in place (no list of per-draw arrays stacked at the end: half the peak memory).
    collected: dict[str, np.ndarray] = {}
    for c in range(n_c):
        for d in range(n_d):
            p = {k: val[c, d] for k, val in arrays.items()}
            one = _one_draw(p, spec, data, lay, rng, log_likelihood, impute, states)
            for k, val in one.items():
                if k not in collected:
                    collected[k] = np.empty((n_c, n_d, *np.shape(val)))
                collected[k][c, d] = val
    pat = {v.PATIENT: data.coords[v.PATIENT]}
    dims: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
        "trait_predictor": ((v.PATIENT,), pat),
        "trait_outcome": ((v.PATIENT,), pat),
        "patient_dev_predictor": ((v.PATIENT,), pat),
        "patient_dev_outcome": ((v.PATIENT,), pat),
        "state_effect_by_patient": ((v.PATIENT,), pat),
        **{own: ((v.PATIENT,), pat) for own in BY_PATIENT.values()},
        "state_predictor": ((v.PATIENT, v.SESSION), {**pat, v.SESSION: data.coords[v.SESSION]}),
        "state_outcome": ((v.PATIENT, v.SESSION), {**pat, v.SESSION: data.coords[v.SESSION]}),
    }
    ther = {v.THERAPIST: data.coords.get(v.THERAPIST, [])}
    for name in (
        "therapist_dev_predictor",
        "therapist_dev_outcome",
        "therapist_dev_predictor_raw",
        "therapist_dev_outcome_raw",
    ):
        dims[name] = ((v.THERAPIST,), ther)
    dims["ll_predictor"] = (("observed_predictor_cell",), {})
    dims["ll_outcome"] = (("observed_outcome_cell",), {})
    post_vars: dict[str, xr.DataArray] = {}
    ll_vars: dict[str, xr.DataArray] = {}
    for name, arr in collected.items():
        d_names, coords = dims[name]
        da = xr.DataArray(arr, dims=("chain", "draw", *d_names), coords=coords)
        if name.startswith("ll_"):
            ll_vars[name[3:]] = da
        else:
            post_vars[name] = da
    if spec.time_model == "continuous":  # the lag effects at the effects interval
        for name, arr in ct_effects.interval_draws(arrays, spec, data.times).items():
            post_vars[name] = xr.DataArray(arr, dims=("chain", "draw"))
    return post_vars, ll_vars


def complete_posterior(
    idata: xr.DataTree,
    data: SessionData,
    spec: ModelSpec,
    random_seed: int,
    log_likelihood: bool = True,
    impute_missing: bool = False,
    states: bool = True,
) -> xr.DataTree:
    """Draw the integrated-out therapist deviations and latent means and add what depends on
    them to the posterior (numpy, nothing is compiled).

    For every posterior draw, the therapist parts of the latent means and then each patient's
    latent mean are drawn from their Gaussian conditional posteriors, so the joint draws are
    exact draws from the posterior of the model with sampled traits. Traits, therapist
    deviations, ``state_effect_by_patient`` (in the group ``unit_draws``:
    :mod:`bayes_alliance.inference.unit_group`), the states (in their own group,
    ``latent_states``: :mod:`bayes_alliance.inference.state_group`) and, with
    ``log_likelihood``, the pointwise log-likelihood of each observed cell given the latent
    means and past states follow.
    Seeded by ``random_seed``; ``states=False`` leaves the states out (see
    :func:`bayes_alliance.inference.fit.states_wanted`).
    """
    # The raw deviations of a tree with the unit draws in their group are inputs here.
    idata = merge_unit_draws(idata)
    post_vars, ll_vars = complete(
        idata.posterior.to_dataset(),
        data,
        spec,
        random_seed,
        log_likelihood,
        impute_missing,
        states,
    )
    post = idata.posterior.to_dataset().assign(post_vars)
    idata["posterior"] = xr.DataTree(post)
    if log_likelihood:
        idata["log_likelihood"] = xr.DataTree(xr.Dataset(ll_vars))
    return move_unit_draws(move_states(idata), spec.free_parameters())
