r"""The mechanism model with its latent means, changes, therapist parts and missing cells
integrated out: NUTS sees only the population parameters and the random lagged paths.

The model is that of :mod:`bayes_alliance.mechanisms.model` (k series stacked with the outcome
last; session t of patient i of therapist j), with measurement error on chosen series::

    z_ti = mu + u_j + v_i + (s + delta_i) c_ti e_1 + w_ti + eps_ti,   eps_ti ~ N(0, diag(omega^2))
    w_ti = Phi_i w_(t-1)i + e_ti,   e_ti ~ N(0, Sigma_e),   w_(first)i ~ N(0, Sigma_1)
    (v_i, delta_i) ~ N(0, Sigma_P),   u_j ~ N(0, Sigma_T)
    O_i = g_0 + u^O_j + g_T u_j1 + g_P v_i1 + g_S delta_i + eta_i,   eta_i ~ N(0, sd_O^2),
    u^O_j ~ N(0, sd_end_therapist^2)

With random lags that covary with the latent means (``lag_trait_covariance``) the patient's
lag deviations ``d_i`` and ``b_i = (v_i, delta_i)`` are jointly normal; with ``L`` the lower
Cholesky factor of their covariance (``d`` first) and ``d_i = L_dd z_i``::

    b_i | d_i ~ N(m_i, L_bb L_bb'),   m_i = L_bd z_i,

so ``m_i`` is one more known mean (of the series, and through ``g_P``, ``g_S`` of the end
outcome: :func:`shifted_end`) and ``b_i`` is integrated under ``N(0, L_bb L_bb')`` about it.

Given the parameters every observed cell and end outcome is Gaussian and linear in the
patient's coefficients ``b_i = (v_i, delta_i)`` and the therapist's ``tau_j = (u_j, u^O_j)``:

1. the k-series Kalman filter (:mod:`bayes_alliance.kernels.kalman_k`) run on the data minus
   the known means ``mu + s c_t e_1`` gives each patient's factor in ``beta_i = b_i + (u_j,
   0)`` (regressors: the unit vectors and ``c_t e_1``), with every missing cell integrated
   (two series without a change: the same factor from the main model's entry-wise Op,
   :mod:`bayes_alliance.kernels.kalman_k2`, which costs less per draw);
2. the end outcome adds the factor of its residual, linear in ``(b_i, tau_j)``; a baseline
   (:mod:`bayes_alliance.mechanisms.baseline`) only adds known shifts to the means and ``g_0``;
3. ``b_i`` is integrated under ``N(0, Sigma_P)``, the patients' factors in ``tau_j`` are summed
   over the therapist's caseload and ``tau_j`` is integrated under ``N(0, diag(Sigma_T,
   sd_end_therapist^2))`` (:class:`bayes_alliance.kernels.levels.Quadratic`; in the model's
   pytensor graph the three steps are one Op, :mod:`bayes_alliance.kernels.level_op`).

The log density is the exact marginal ``log p(data | theta)`` of the sampled-traits model (the
tests compare it with the dense joint Gaussian of all observed cells). The end outcome's
effect of the change is sampled per SD of the changes (``end_change_per_sd = g_S sd_trend``) as
in the sampled form, where it avoided a ridge. ``change_reliability`` uses the series'
precision about each patient's change given its means, the filter's ``A[delta, delta]``.

References: Durbin & Koopman (2012), *Time Series Analysis by State Space Methods*, sections 4.3
and 6.4; Asparouhov, Hamaker & Muthen (2018), Struct Equ Modeling 25:359 (DSEM); Schuurman &
Hamaker (2019), Psych Methods 24:70 (measurement error).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_alliance.core.vocab import ERROR_SERIES, PATH, PATIENT, SERIES
from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.kalman_k import filter_k, kalman_k
from bayes_alliance.kernels.kalman_k2 import filter_k2, unit_mean_columns
from bayes_alliance.kernels.level_op import level_logp
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.mechanisms.baseline import baseline_parameters, end_trait_of
from bayes_alliance.mechanisms.containers import prior_inputs, series_inputs
from bayes_alliance.mechanisms.parts import cov_chol, lag_matrices, therapist_chol, therapist_sd
from bayes_alliance.mechanisms.priors import EndPriors, MechanismGrid, MechanismPriors
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.model.priors import log_innovation_sd_sigma

LOG_2PI = float(np.log(2 * np.pi))
ERROR_DIM = ERROR_SERIES
# Two series without a change column go through the main model's entry-wise filter Op
# (kernels.kalman_k2), which costs less per draw than the general k-series one; off only in
# the tests that compare the two.
K2_FAST_PATH = True


def filter_inputs(data: SeriesData, grid: MechanismGrid, trend: bool) -> dict[str, np.ndarray]:
    """The filter's constants: the observed mask (P, S, k), the first-cell mask (P, S) and the
    regressors (P, S, k, J) of the coefficients ``(M_1..M_k[, delta])`` (the values, 0 where
    unobserved, are ``grid.filled``)."""
    n, n_s, k = data.z.shape
    observed = np.isfinite(data.z).astype(float)
    first = np.zeros((n, n_s))
    first[np.arange(n), data.first] = 1.0
    n_coef = k + int(trend)
    x = np.zeros((n, n_s, k, n_coef))
    for r in range(k):
        x[:, :, r, r] = 1.0
    if trend:
        x[:, :, 0, k] = grid.time
    return {"observed": observed, "first": first, "x": x}


def _loading(k: int, n_coef: int, n_tau: int) -> np.ndarray:
    """``G`` with ``beta_i = G (b_i, tau_j)``: the coefficients themselves and, for the means,
    the therapist's deviations ``u_j`` (the end outcome's ``u^O_j`` loads on no series)."""
    g = np.zeros((n_coef, n_coef + n_tau))
    g[:, :n_coef] = np.eye(n_coef)
    if n_tau:
        g[np.arange(k), n_coef + np.arange(k)] = 1.0
    return g


def patient_factor(log_c: Any, acc: Any, k: int, n_coef: int, n_tau: int) -> Quadratic:
    """Each patient's factor in ``(b_i, tau_j)`` from the filter's ``log C`` (P,) and ``A``
    (P, J+1, J+1): ``beta_i = b_i + (u_j, 0)``."""
    g = _loading(k, n_coef, n_tau)
    return Quadratic(g.T @ acc[:, 1:, 1:] @ g, acc[:, 1:, 0] @ g, acc[:, 0, 0], log_c)


def _vector(xp: Any, items: list[Any]) -> Any:
    if xp is np:
        return np.array([float(v) for v in items])
    return xp.stack([xp.as_tensor_variable(v).astype("float64") for v in items])


@dataclass
class EndParams:
    """The Gaussian end outcome's parameters: intercept, effects per unit of the patient part
    of the predictor's trait, of the change (None without a trend) and of the therapist part,
    residual SD and the SD of the outcome's therapist intercepts (None with two levels)."""

    intercept: Any
    trait_patient: Any
    change: Any
    trait_therapist: Any
    sd: Any
    sd_therapist: Any
    shift: Any = None  # (P,) a baseline's known shift of the outcome (mechanisms.baseline)


@dataclass
class IntegratedParams:
    """The parameters the integrated density depends on (tensors or arrays): intercepts (k,),
    lag matrices (P, k, k) or (k, k), innovation covariances (k, k) or (P, k, k) (random
    innovations), the first-cell covariance (k, k), the
    patient level's lower Cholesky factor (J, J) (J = k, or k + 1 with the change last), the
    mean trend (or None), measurement-error variances (k,), the therapist level's factor (k, k)
    (or None) and the end outcome's :class:`EndParams` (or None)."""

    intercept: Any
    phi: Any
    sigma: Any
    first_cov: Any
    chol_patient: Any
    trend: Any = None
    error: Any = None
    chol_therapist: Any = None
    end: EndParams | None = None
    baseline: Any = None  # (P, k) a baseline's known shift of the latent means
    # (P, J) each patient's coefficients' known mean, b_i ~ N(m_i, U U'): given the random
    # lags' deviations when they covary with the coefficients (lag_trait_covariance)
    patient_mean: Any = None


def end_factor(
    data: SeriesData,
    end: EndParams,
    n_coef: int,
    n_tau: int,
    k: int,
    xp: Any,
    outcome: tuple[Any, Any] | None = None,
) -> Quadratic:
    r"""The Gaussian end outcome's factor in ``(b_i, tau_j)``:
    ``O_i - g_0 = g_P b_i1 + g_S delta_i + g_T u_j1 + u^O_j + eta_i``; patients without an
    outcome contribute nothing. ``outcome``: who has one (1/0) and the values (0 where
    missing), by default from ``data`` (containers in a built model)."""
    assert data.end_outcome is not None
    if outcome is None:
        seen = np.isfinite(data.end_outcome).astype(float)
        obs = np.where(seen > 0, data.end_outcome, 0.0)
    else:
        seen, obs = outcome
    size = n_coef + n_tau
    w: list[Any] = [0.0] * size
    w[0] = end.trait_patient
    if n_coef > k:
        w[k] = end.change
    if n_tau:
        w[n_coef] = end.trait_therapist
        w[n_coef + k] = 1.0
    wv = _vector(xp, w)
    prec = seen / end.sd**2
    known = end.intercept if end.shift is None else end.intercept + end.shift
    resid = (obs - known) * seen
    lam = prec[:, None, None] * (wv[:, None] * wv[None, :])[None, :, :]
    eta = (prec * resid)[:, None] * wv[None, :]
    log_c = -0.5 * seen * (LOG_2PI + 2.0 * xp.log(end.sd))
    return Quadratic(lam, eta, prec * resid**2, log_c)


def shifted_end(params: IntegratedParams) -> EndParams | None:
    """The end outcome's parameters with the known means of the patients' coefficients
    (``patient_mean``) in its shift, through ``g_P`` and ``g_S``; as given without them."""
    end, m = params.end, params.patient_mean
    if end is None or m is None:
        return end
    extra = end.trait_patient * m[:, 0]
    if params.trend is not None:  # the change is the last coefficient
        extra = extra + end.change * m[:, -1]
    return replace(end, shift=extra if end.shift is None else end.shift + extra)


def _static_shape(a: Any) -> tuple[int, ...]:
    """An array's shape, or a tensor's static shape (a data container's)."""
    return tuple(np.shape(a)) if isinstance(a, np.ndarray) else tuple(a.type.shape)


def patient_factors(
    data: SeriesData,
    inputs: dict[str, np.ndarray],
    filled: np.ndarray,
    time: np.ndarray,
    params: IntegratedParams,
    xp: Any = np,
) -> tuple[Quadratic, Any]:
    """Each patient's log density of its observed cells and end outcome with its own
    coefficients ``b_i`` integrated out, as a factor in its therapist's ``tau_j`` (of size 0
    with two levels); and the filter's ``A`` (P, J+1, J+1).

    ``inputs`` from :func:`filter_inputs` (in a built model the containers of
    :func:`~bayes_alliance.mechanisms.containers.series_inputs`, which add the end outcome and
    the caseloads); ``filled`` the values (0 where unobserved) and
    ``time`` the centred session numbers (P, S) of :class:`MechanismGrid`; ``xp`` numpy (the
    filter's numba kernel called directly) or ``pytensor.tensor`` (its Op)."""
    factor, acc = series_factors(data, inputs, filled, time, params, xp)
    return factor.integrate(_static_shape(inputs["x"])[-1], params.chol_patient, xp), acc


def series_factors(
    data: SeriesData,
    inputs: dict[str, np.ndarray],
    filled: np.ndarray,
    time: np.ndarray,
    params: IntegratedParams,
    xp: Any = np,
) -> tuple[Quadratic, Any]:
    """Each patient's log density of its observed cells and end outcome as a factor in its
    coefficients ``(b_i, tau_j)`` (nothing integrated yet); and the filter's ``A``. Arguments
    as :func:`patient_factors`."""
    n, n_s, k = data.z.shape
    n_coef = _static_shape(inputs["x"])[-1]
    has_end = params.end is not None
    n_tau = (k + int(has_end)) if params.chol_therapist is not None else 0
    known = xp.broadcast_to(params.intercept, (n, n_s, k))
    if params.trend is not None:
        shift = np.zeros((1, 1, k))
        shift[0, 0, 0] = 1.0
        known = known + params.trend * time[:, :, None] * shift
    if params.baseline is not None:
        known = known + params.baseline[:, None, :]
    if params.patient_mean is not None:
        # b_i = m_i + (a deviation with mean 0): m_i is one more known mean of the series
        # (and of the end outcome: shifted_end)
        m = params.patient_mean
        known = known + m[:, None, :k]
        if params.trend is not None:
            known = known + (m[:, k][:, None] * time)[:, :, None] * shift
    end = shifted_end(params)
    d = (filled - known) * inputs["observed"]
    error = params.error if params.error is not None else np.zeros(k)
    error = xp.broadcast_to(error, (n, n_s, k))
    if xp is np:

        def mat(m: Any) -> np.ndarray:
            return np.ascontiguousarray(np.broadcast_to(m, (n, k, k)), dtype=float)

        log_c, acc = kalman_k(
            np.ascontiguousarray(d, dtype=float),
            inputs["x"],
            inputs["observed"],
            inputs["first"],
            mat(params.phi),
            mat(params.sigma),
            mat(params.first_cov),
            np.ascontiguousarray(error, dtype=float),
        )
    elif K2_FAST_PATH and unit_mean_columns(inputs["x"], k):
        log_c, acc = filter_k2(
            d, inputs["observed"], inputs["first"], params.phi, params.sigma,
            params.first_cov, error,
        )  # fmt: skip
    else:
        log_c, acc = filter_k(
            d,
            inputs["x"],
            inputs["observed"],
            inputs["first"],
            params.phi,
            params.sigma,
            params.first_cov,
            error,
        )
    factor = patient_factor(log_c, acc, k, n_coef, n_tau)
    if end is not None:
        outcome = (inputs["end_seen"], inputs["end_value"]) if "end_seen" in inputs else None
        factor = factor.plus(end_factor(data, end, n_coef, n_tau, k, xp, outcome))
    return factor, acc


def change_reliability(tau2: Any, precision: Any) -> Any:
    r"""How well the series alone resolve the patients' changes: the mean over patients of
    ``tau^2 / (tau^2 + 1 / p_i) = tau^2 p_i / (1 + tau^2 p_i)``, with ``p_i`` the series'
    precision about patient i's change given its means (the filter's ``A[delta, delta]``) and
    ``tau`` the SD of the changes. A patient with one session or no predictor rating
    (``p_i = 0``) contributes 0 (the reliability of the mean error variance,
    ``tau^2 / (tau^2 + mean 1 / p_i)``, was 0 for the whole sample as soon as one such patient
    was in it)."""
    return (tau2 * precision / (1.0 + tau2 * precision)).mean()


def _block_diag(xp: Any, chol: Any, sd: Any, k: int) -> Any:
    if xp is np:
        out = np.zeros((k + 1, k + 1))
        out[:k, :k] = chol
        out[k, k] = sd
        return out
    out = xp.zeros((k + 1, k + 1))
    return xp.set_subtensor(xp.set_subtensor(out[:k, :k], chol)[k, k], sd)


def therapist_prior(params: IntegratedParams, k: int, xp: Any = np) -> Any:
    """The lower Cholesky factor of the therapist's ``tau_j``: ``Sigma_T``'s, and with an end
    outcome its therapist intercepts' SD (independent of the traits)."""
    if params.end is None:
        return params.chol_therapist
    return _block_diag(xp, params.chol_therapist, params.end.sd_therapist, k)


def caseloads(data: SeriesData) -> np.ndarray:
    """(therapists, patients) indicator of each therapist's patients."""
    assert data.patient_therapist is not None
    n = data.n_patients
    out = np.zeros((int(data.patient_therapist.max()) + 1, n))
    out[data.patient_therapist, np.arange(n)] = 1.0
    return out


def marginal_logp(
    data: SeriesData,
    inputs: dict[str, np.ndarray],
    filled: np.ndarray,
    time: np.ndarray,
    params: IntegratedParams,
    xp: Any = np,
) -> tuple[Any, Any]:
    """The log density of the observed cells and end outcomes with every latent integrated
    out, per independent unit: per patient (two levels) or per therapist (three levels); and
    the filter's ``A`` (P, J+1, J+1). Arguments as :func:`patient_factors`.

    On pytensor the levels are one Op (:func:`bayes_alliance.kernels.level_op.level_logp`, which
    gives the times it saved); on numpy they are the composition of :class:`Quadratic` steps
    (the reference the Op is tested against)."""
    factor, acc = series_factors(data, inputs, filled, time, params, xp)
    n_coef = _static_shape(inputs["x"])[-1]
    three = params.chol_therapist is not None
    load = (inputs["caseload"] if "caseload" in inputs else caseloads(data)) if three else None
    prior = therapist_prior(params, data.k, xp) if three else None
    if xp is not np:
        n_tau = (data.k + int(params.end is not None)) if three else 0
        value = level_logp(
            factor.lam, factor.eta, factor.kappa, factor.log_c, params.chol_patient, load,
            prior, sizes=(n_coef, n_tau),
        )  # fmt: skip
        return value, acc
    after = factor.integrate(n_coef, params.chol_patient, xp)
    if not three:
        return after.value(), acc
    per_therapist = after.map(lambda v: xp.tensordot(load, v, axes=1))
    n_tau = data.k + int(params.end is not None)
    return per_therapist.integrate(n_tau, prior, xp).value(), acc


def integrated_likelihood(
    data: SeriesData, spec: MechanismSpec, priors: MechanismPriors, grid: MechanismGrid
) -> None:
    """Add the integrated mechanism model's parameters and its marginal log density (a
    potential ``integrated_series``) to the model in context; see the module."""
    model = pm.modelcontext(None)
    k = data.k
    trend = bool(spec.trend)
    # The data and the priors' data scales as containers: one graph for every data set of
    # this layout (compiled refits, mechanisms.compiled).
    priors = prior_inputs(priors)
    load = caseloads(data) if spec.therapist_level else None
    inputs = series_inputs(
        data, grid, filter_inputs(data, grid, trend), load, spec.baseline, spec.baseline_level
    )
    intercept = pm.Normal(
        "intercept", mu=priors.intercept_mu, sigma=priors.intercept_sigma, dims=SERIES
    )
    joint = _joint_patient(spec, priors, k) if spec.lag_trait_covariance else None
    phi = lag_matrices(
        data, spec, priors, inputs.get("therapist_of"), None if joint is None else joint[0]
    )
    chol_e = cov_chol("innovation", SERIES, priors.sd_innovation, k)
    chol_1 = cov_chol("first", SERIES, priors.sd_first, k)
    slope, sd_change = None, None
    dims = "patient_effect" if trend else SERIES
    if trend:
        assert priors.trend is not None
        slope = pm.Normal("trend", 0.0, priors.trend)
    if joint is None:
        chol_p = cov_chol("patient", dims, priors.sd_patient, k + int(trend), priors.trait_eta)
    else:
        chol_p = joint[2]
    if trend:
        sd_change = pm.Deterministic("sd_trend", model["sd_patient"][k])
    error = None
    if spec.measurement_error:
        assert priors.measurement_error is not None
        idx = [data.roles.index(r) for r in spec.measurement_error]
        model.add_coords({ERROR_DIM: list(spec.measurement_error)})
        omega = pm.HalfNormal(
            "measurement_error_sd", sigma=priors.measurement_error[idx], dims=ERROR_DIM
        )
        error = pt.set_subtensor(pt.zeros(k)[idx], omega**2)
    chol_t = therapist_chol(priors, k) if spec.therapist_level else None
    end = None
    if priors.end is not None:
        end = _end_parameters(priors.end, sd_change, spec.therapist_level, priors.therapist_gamma)
    sigma = chol_e @ chol_e.T
    if spec.random_innovations:
        # Each patient's innovation SDs scaled by exp(s u_i) (log-normal, non-centred): the
        # covariance D_i Sigma_e D_i keeps the innovations' correlations.
        sd_log = pm.HalfNormal(
            "sd_log_innovation", sigma=log_innovation_sd_sigma(PATIENT), dims=SERIES
        )
        off = pm.Normal("log_innovation_offset", 0.0, 1.0, dims=(PATIENT, SERIES))
        scale = pt.exp(off * sd_log[None, :])
        sigma = scale[:, :, None] * sigma[None, :, :] * scale[:, None, :]
    params = IntegratedParams(
        intercept, phi, sigma, chol_1 @ chol_1.T, chol_p, slope, error, chol_t, end
    )
    if joint is not None:  # b_i | d_i: mean L_bd z_i, Cholesky factor L_bb (z_i: d_i's offsets)
        params.patient_mean = model["path_offset"] @ joint[1].T
    if spec.baseline:
        assert priors.baseline is not None
        params.baseline, shift = baseline_parameters(
            data,
            spec.baseline,
            priors.baseline,
            end_trait_of(end, spec.baseline_level),
            inputs["baseline"],
            spec.baseline_level,
        )
        if end is not None:
            end.shift = shift
    logp, acc = marginal_logp(data, inputs, inputs["filled"], inputs["time"], params, pt)
    pm.Potential("integrated_series", pt.sum(logp))
    if trend:
        assert sd_change is not None
        pm.Deterministic(
            "change_reliability", change_reliability(sd_change**2, acc[:, k + 1, k + 1])
        )


def _joint_patient(spec: MechanismSpec, priors: MechanismPriors, k: int) -> tuple[Any, Any, Any]:
    r"""One unstructured covariance of the patients' random-path deviations ``d_i`` and their
    coefficients ``b_i`` (latent means, change), LKJ(``priors.trait_eta``) with each part's
    half-normal SD scales; the blocks of its lower Cholesky factor, ``d`` first::

        L = [[L_dd, 0], [L_bd, L_bb]],   d_i = L_dd z_i,   b_i | d_i ~ N(L_bd z_i, L_bb L_bb')

    Stores the marginal SDs and correlations under the names of the separate covariances
    (``sd_paths``, ``corr_paths``, ``sd_patient``, ``corr_patient``) and the cross
    correlations as ``corr_paths_patient`` (paths x patient effects)."""
    n_d = len(spec.random_paths or ())
    n_b = k + int(bool(spec.trend))
    dims = "patient_effect" if spec.trend else SERIES
    scales = pt.concatenate([pt.as_tensor(priors.sd_paths), pt.as_tensor(priors.sd_patient)])
    chol, corr, sds = pm.LKJCholeskyCov(
        "chol_paths_patient",
        n=n_d + n_b,
        eta=priors.trait_eta,
        sd_dist=pm.HalfNormal.dist(sigma=scales, shape=n_d + n_b),
        compute_corr=True,
        store_in_trace=False,
    )
    pm.Deterministic("sd_paths", sds[:n_d], dims=PATH)
    pm.Deterministic("sd_patient", sds[n_d:], dims=dims)
    if n_d > 1:
        pm.Deterministic("corr_paths", corr[:n_d, :n_d], dims=(PATH, f"{PATH}_"))
    if n_b > 1:
        pm.Deterministic("corr_patient", corr[n_d:, n_d:], dims=(dims, f"{dims}_"))
    pm.Deterministic("corr_paths_patient", corr[:n_d, n_d:], dims=(PATH, dims))
    return chol[:n_d, :n_d], chol[n_d:, :n_d], chol[n_d:, n_d:]


def _end_parameters(prior: EndPriors, sd_change: Any, therapists: bool, gamma: bool) -> EndParams:
    """The end outcome's random variables (inside the model's context); the change's effect is
    sampled per SD of the changes."""
    assert prior.sd_sigma is not None
    g0 = pm.Normal("end_intercept", prior.intercept_mu, prior.intercept_sigma)
    g_p = pm.Normal("end_trait_effect_patient", 0.0, prior.trait_sigma)
    g_s = None
    if sd_change is not None:
        b_s = pm.Normal("end_change_per_sd", 0.0, prior.change_per_sd_sigma)
        g_s = pm.Deterministic("end_change_effect", b_s / sd_change)
    g_t, sd_o = None, None
    if therapists:
        assert prior.therapist_sigma is not None and prior.sd_therapist_sigma is not None
        g_t = pm.Normal("end_trait_effect_therapist", 0.0, prior.therapist_sigma)
        sd_o = therapist_sd("sd_end_therapist", prior.sd_therapist_sigma, gamma)
    sd = pm.HalfNormal("end_sd", prior.sd_sigma)
    return EndParams(g0, g_p, g_s, g_t, sd, sd_o)


__all__ = [
    "ERROR_DIM",
    "EndParams",
    "IntegratedParams",
    "end_factor",
    "filter_inputs",
    "integrated_likelihood",
    "marginal_logp",
    "patient_factor",
]
