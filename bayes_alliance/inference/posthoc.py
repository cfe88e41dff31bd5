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
   and backward sampling, else NaN), each patient's structural state effect, and optionally the
   pointwise log-likelihood of every observed cell given the latent mean and the patient's
   earlier observed cells (the one-step-ahead conditional score of
   :mod:`bayes_alliance.analysis.comparison`; the Kalman filter's prediction errors when cells are
   missing) follow.

The joint draws are exact draws from the posterior of the model with sampled traits and
therapist deviations. Everything is seeded by ``random_seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from bayes_alliance.core import vocab
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.kernels import dynamics, gaps, marginal
from bayes_alliance.model.likelihood import (
    GridIndex,
    SeriesGrid,
    TherapistBlock,
    grid_sums,
    therapist_factors,
)
from bayes_alliance.model.within import Dynamics, baseline_level, baseline_values, moderator_values
from bayes_alliance.spec.model_spec import ModelSpec

v = vocab
LOG_2PI = float(np.log(2 * np.pi))


def _draw(moments: tuple[Any, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return marginal.draw_means(moments, rng)


@dataclass
class _Layout:
    """What the data fix once for all draws."""

    grid: SeriesGrid
    idx: GridIndex
    cells: dict[str, np.ndarray]
    t: np.ndarray
    z: np.ndarray | None
    gaps: bool  # missing cells inside a series: the Kalman filter replaces the sums
    # Centred baseline characteristics of each patient (patients x columns; a therapist-level
    # baseline's rows are those of the patient's therapist) and their level.
    baseline: np.ndarray | None = None
    baseline_level: str = v.PATIENT

    @classmethod
    def of(cls, data: SessionData, spec: ModelSpec) -> _Layout:
        grid = SeriesGrid.of(data)
        return cls(
            grid=grid,
            idx=GridIndex.of(data),
            cells=grid.containers(),
            t=(data.sessions - data.sessions[0]).astype(float),
            z=moderator_values(data, spec),
            gaps=bool(grid.miss_x.size or grid.miss_y.size),
            baseline=baseline_values(data, spec),
            baseline_level=baseline_level(data, spec),
        )


def _value(post: Mapping[str, np.ndarray], name: str, default: float = 0.0) -> Any:
    return post[name] if name in post else default


def draw_dynamics(
    p: Mapping[str, Any], spec: ModelSpec, data: SessionData, z: np.ndarray | None
) -> Dynamics:
    """The reduced-form dynamics of one posterior draw (``p``: values by name), with each
    patient's structural slope when slopes vary: the numpy twin of
    :func:`bayes_alliance.model.within.within_part`."""
    slope: Any = _value(p, v.STATE_EFFECT)
    varying = bool(spec.random_slopes or spec.moderators)
    if z is not None:
        slope = slope + z @ np.atleast_1d(p[v.MODERATOR_EFFECT])
    if v.THERAPIST in spec.random_slopes:
        dev = p[v.SD_STATE_EFFECT_THERAPIST] * p["state_effect_therapist_raw"]
        slope = slope + dev[data.patient_therapist]
    if v.PATIENT in spec.random_slopes:
        slope = slope + p[v.SD_STATE_EFFECT_PATIENT] * p["state_effect_patient_raw"]
    if varying:
        slope = np.ones(data.n_patients) * slope
    b0 = _value(p, v.SAME_SESSION_EFFECT) if spec.same_session != "none" else 0.0
    sx, sy = p[v.INNOVATION_SD_PREDICTOR], p[v.INNOVATION_SD_OUTCOME]
    rho = _value(p, v.INNOVATION_CORR) if spec.same_session == "none" else 0.0
    structural = (
        _value(p, v.PREDICTOR_AUTOREGRESSION),
        _value(p, v.REVERSE_STATE_EFFECT),
        slope,
        _value(p, v.OUTCOME_AUTOREGRESSION),
    )
    phi, sigma = dynamics.reduced_form(
        structural, (sx**2, rho * sx * sy, sy**2), b0, spec.same_session
    )
    if spec.first_session == "free":
        fx, fy = p["first_sd_predictor"], p["first_sd_outcome"]
        first: tuple[Any, ...] = (fx**2, p["first_corr"] * fx * fy, fy**2)
    elif spec.dynamics == "var1":
        first = dynamics.stationary_cov(phi, sigma)
    else:
        first = sigma
    return Dynamics(
        phi,
        sigma,
        first,
        varying,
        by_session=spec.innovations == "session",
        slope=slope if varying else None,
    )


def baseline_shift(
    p: Mapping[str, Any], zb: np.ndarray | None, level: str = v.PATIENT
) -> tuple[Any, Any]:
    """The known shift of each patient's latent means by the baseline (between-level
    mediation): ``a' z`` for the predictor and ``(c' + b a)' z`` for the outcome, with
    a = ``baseline_effect_predictor``, c' = ``baseline_effect_outcome`` and b the trait effect
    at the baseline's ``level`` (``trait_effect_patient``, or ``trait_effect_therapist`` for a
    therapist-level baseline, whose rows in ``zb`` are those of each patient's therapist);
    (0, 0) without a baseline. The numpy twin of :func:`bayes_alliance.model.build._baseline_shift`."""
    if zb is None:
        return 0.0, 0.0
    a = np.atleast_1d(p[v.BASELINE_EFFECT_PREDICTOR])
    c = np.atleast_1d(p[v.BASELINE_EFFECT_OUTCOME])
    return zb @ a, zb @ (c + p[v.BASELINE_MEDIATOR[level]] * a)


def _known(p: Mapping[str, Any], spec: ModelSpec, lay: _Layout, n_p: int) -> tuple[Any, Any]:
    """Known part of each cell's mean, (n_p, 1) or (n_p, S): intercept or session means plus
    the patient's trend and the baseline's shift of the latent means (``lay.baseline`` holds
    the rows of the ``n_p`` patients)."""
    if spec.session_means:
        kx: Any = p["session_mean_predictor"][None, :]
        ky: Any = p["session_mean_outcome"][None, :]
    else:
        kx, ky = p[v.INTERCEPT_PREDICTOR], p[v.INTERCEPT_OUTCOME]
    if spec.trend:
        tx = p[v.TREND_PREDICTOR] + p[v.SD_TREND_PREDICTOR] * p["trend_predictor_raw"]
        ty = p[v.TREND_OUTCOME] + p[v.SD_TREND_OUTCOME] * p["trend_outcome_raw"]
        kx = kx + tx[:, None] * lay.t[None, :]
        ky = ky + ty[:, None] * lay.t[None, :]
    sx, sy = baseline_shift(p, lay.baseline, lay.baseline_level)
    kx = kx + np.reshape(sx, (-1, 1))
    ky = ky + np.reshape(sy, (-1, 1))
    return kx + np.zeros((n_p, 1)), ky + np.zeros((n_p, 1))


def _one_draw(
    p: Mapping[str, Any],
    spec: ModelSpec,
    data: SessionData,
    lay: _Layout,
    rng: np.random.Generator,
    log_likelihood: bool,
    impute: bool,
    states: bool = True,
) -> dict[str, np.ndarray]:
    n_p = data.n_patients
    dyn = draw_dynamics(p, spec, data, lay.z)
    kx, ky = _known(p, spec, lay, n_p)
    zx, zy = lay.grid.x, lay.grid.y
    inn: dict[str, gaps.Innovations] | None = None
    if lay.gaps:
        _, factor, inn = gaps.filter_factor(
            lay.grid.gap_cells(kx, ky),
            dyn.phi,
            dyn.sigma,
            dyn.first,
            zx.shape[1],
            dyn.by_session,
            per_cell=log_likelihood,
        )
    else:
        sums = grid_sums(zx - kx, zy - ky, lay.cells, dyn, xp=np)
        _, factor = marginal.series_factor(sums, dyn.phi, dyn.first)
    var_px = p[v.SD_PATIENT_PREDICTOR] ** 2
    beta_p = p[v.TRAIT_EFFECT_PATIENT]
    tau = (var_px, beta_p * var_px, beta_p**2 * var_px + p[v.SD_PATIENT_OUTCOME] ** 2)
    out: dict[str, np.ndarray] = {}
    m0: tuple[Any, Any] = (0.0, 0.0)
    if spec.therapist_level:
        assert data.therapists is not None and data.patient_therapist is not None
        var_tx = p[v.SD_THERAPIST_PREDICTOR] ** 2
        beta_t = p[v.TRAIT_EFFECT_THERAPIST]
        tau_t = (var_tx, beta_t * var_tx, beta_t**2 * var_tx + p[v.SD_THERAPIST_OUTCOME] ** 2)
        tj = data.patient_therapist
        _, pseudo = marginal.pseudo_observation(factor, tau)
        caseloads = therapist_factors(pseudo, TherapistBlock(tj, len(data.therapists), tau_t), np)
        a_x, a_tot = _draw(marginal.mean_given(caseloads, (0.0, 0.0), tau_t), rng)
        a_y = a_tot - beta_t * a_x
        out["therapist_dev_predictor"] = a_x
        out["therapist_dev_outcome"] = a_y
        with np.errstate(divide="ignore", invalid="ignore"):
            out["therapist_dev_predictor_raw"] = a_x / p[v.SD_THERAPIST_PREDICTOR]
            out["therapist_dev_outcome_raw"] = a_y / p[v.SD_THERAPIST_OUTCOME]
        m0 = (a_x[tj], a_tot[tj])
    mx, my = _draw(marginal.mean_given(factor, m0, tau), rng)
    # The reported traits are the whole latent means: the baseline's shift is part of them
    # (it is in the known mean kx, ky, not in the drawn deviations mx, my).
    sx, sy = baseline_shift(p, lay.baseline, lay.baseline_level)
    if spec.session_means:
        out["patient_dev_predictor"], out["patient_dev_outcome"] = mx, my
        out["trait_predictor"] = p["session_mean_predictor"].mean() + sx + mx
        out["trait_outcome"] = p["session_mean_outcome"].mean() + sy + my
    else:
        out["trait_predictor"] = p[v.INTERCEPT_PREDICTOR] + sx + mx
        out["trait_outcome"] = p[v.INTERCEPT_OUTCOME] + sy + my
    inside = data.in_series
    if spec.store_states and states:
        wx = zx - kx - mx[:, None]
        wy = zy - ky - my[:, None]
        if lay.gaps and impute:
            wx, wy = gaps.draw_missing(
                lay.grid.gap_cells(kx + mx[:, None], ky + my[:, None]),
                dyn.phi,
                dyn.sigma,
                dyn.first,
                dyn.by_session,
                inside,
                rng,
            )
        out["state_predictor"] = np.where(inside & ((lay.grid.obs_x > 0) | impute), wx, np.nan)
        out["state_outcome"] = np.where(inside & ((lay.grid.obs_y > 0) | impute), wy, np.nan)
    if dyn.varying:
        out["state_effect_by_patient"] = dyn.slope
    if log_likelihood:
        if inn is not None:
            lx = inn["x"].loglik(mx[:, None], my[:, None])
            ly = inn["y"].loglik(mx[:, None], my[:, None])
        else:
            lx, ly = cell_loglik(zx - kx - mx[:, None], zy - ky - my[:, None], dyn, lay)
        out["ll_predictor"] = lx[lay.idx.obs_x]
        out["ll_outcome"] = ly[lay.idx.obs_y]
    return out


def cell_loglik(
    wx: np.ndarray, wy: np.ndarray, dyn: Dynamics, lay: _Layout
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
)


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
    lay = _Layout.of(data, spec)
    arrays = {n: np.asarray(posterior[n].values) for n in POSTERIOR_NAMES if n in posterior}
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
    return post_vars, ll_vars


_PATIENT_INDEXED = ("trend_predictor_raw", "trend_outcome_raw")


def latent_deviation(
    posterior: xr.Dataset,
    spec: ModelSpec,
    zb: np.ndarray | None,
    which: str,
    rows: np.ndarray | None = None,
    level: str = v.PATIENT,
) -> np.ndarray:
    """Each draw's latent mean minus its known part (intercept, baseline shift; the session
    means' average with session means), (chain, draw, patient), for the patients at ``rows``
    (default all; ``zb`` holds the baseline of those patients, ``level`` its level, which picks
    the trait effect of the shift, as in :func:`baseline_shift`).

    The reported ``trait_*`` are whole latent means, so the baseline shift is taken off here:
    :func:`_known` adds it back, and a state or replicate must count it once.
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
        a = np.asarray(posterior[v.BASELINE_EFFECT_PREDICTOR].values)  # (chain, draw, k)
        if which == v.OUTCOME:
            b = np.asarray(posterior[v.BASELINE_MEDIATOR[level]].values)[..., None]
            a = np.asarray(posterior[v.BASELINE_EFFECT_OUTCOME].values) + b * a
        dev = dev - np.einsum("cdk,pk->cdp", a, zb)
    return dev


def states_of(
    posterior: xr.Dataset, data: SessionData, spec: ModelSpec, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The states ``w = z - known mean - M`` of the patients at ``rows`` for every draw, from
    the drawn latent means of a completed posterior: shape (chain, draw, len(rows), session).

    The states of observed cells are a function of the latent mean (no randomness); missing
    cells are NaN here (the imputed ones exist only where :func:`complete` drew them)."""
    rows = np.asarray(rows, dtype=int)
    lay = _Layout.of(data, spec)
    if lay.baseline is not None:
        lay.baseline = lay.baseline[rows]
    arrays = {n: np.asarray(posterior[n].values) for n in POSTERIOR_NAMES if n in posterior}
    for n in _PATIENT_INDEXED:
        if n in arrays:
            arrays[n] = arrays[n][..., rows]
    mx, my = (
        latent_deviation(posterior, spec, lay.baseline, w, rows, lay.baseline_level)
        for w in v.VARIABLES
    )
    n_c, n_d = mx.shape[:2]
    n_s = data.n_sessions
    wx, wy = np.empty((n_c, n_d, len(rows), n_s)), np.empty((n_c, n_d, len(rows), n_s))
    for c in range(n_c):
        for d in range(n_d):
            p = {k: val[c, d] for k, val in arrays.items()}
            kx, ky = _known(p, spec, lay, len(rows))
            wx[c, d] = data.x[rows] - kx - mx[c, d][:, None]
            wy[c, d] = data.y[rows] - ky - my[c, d][:, None]
    inside = data.in_series[rows]
    return np.where(inside, wx, np.nan), np.where(inside, wy, np.nan)


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
    deviations, states, ``state_effect_by_patient`` and, with ``log_likelihood``, the pointwise
    log-likelihood of each observed cell given the latent means and past states follow.
    Seeded by ``random_seed``; ``states=False`` leaves the states out (see
    :func:`bayes_alliance.inference.fit.states_wanted`).
    """
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
    return idata
