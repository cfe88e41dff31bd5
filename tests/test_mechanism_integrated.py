"""The integrated mechanism model: the k-series Kalman kernel, the Gaussian levels and the whole
marginal density against the dense joint Gaussian of every observed cell
(``tests/dense_k.py``, written independently from the model's equations)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.kernels.kalman_k import filter_k, kalman_k, kalman_k_vjp
from bayes_alliance.kernels.levels import Quadratic
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from tests.dense_k import EndOutcome, dense_logp
from tests.model_points import cov_of, potential_at_random_point


def _spd(rng: np.random.Generator, n: int, lead: tuple[int, ...] = ()) -> np.ndarray:
    a = rng.normal(size=(*lead, n, n))
    return a @ np.swapaxes(a, -1, -2) / n + np.eye(n)


def _kernel_case(k: int, seed: int = 1, trend: bool = True):
    rng = np.random.default_rng(seed)
    n_p, n_s, n_coef = 3, 5, k + int(trend)
    d = rng.normal(size=(n_p, n_s, k))
    o = (rng.random((n_p, n_s, k)) > 0.25).astype(float)
    first = np.zeros((n_p, n_s))
    first[:2, 0] = 1.0
    first[2, 1] = 1.0  # patient 2 starts in column 1
    o[2, 0] = 0.0
    x = np.zeros((n_p, n_s, k, n_coef))
    for r in range(k):
        x[:, :, r, r] = 1.0
    if trend:
        x[:, :, 0, k] = np.arange(n_s) - 2.0
    phi = rng.normal(scale=0.3, size=(n_p, k, k))
    err = np.abs(rng.normal(size=(n_p, n_s, k))) * 0.3
    err[:, :, k - 1] = 0.0  # the last series without error: observed entries fix states
    return d * o, x, o, first, phi, _spd(rng, k, (n_p,)), _spd(rng, k, (n_p,)), err


def _dense_series(d, x, o, first, phi, sigma, f, err, p, beta):
    """Dense log density of patient p's observed entries given its coefficients beta."""
    n_s, k = d.shape[1], d.shape[2]
    start = int(np.argmax(first[p]))
    var = {start: f[p]}
    for t in range(start + 1, n_s):
        var[t] = phi[p] @ var[t - 1] @ phi[p].T + sigma[p]
    cells = [(t, r) for t in range(start, n_s) for r in range(k) if o[p, t, r] > 0]
    cov = np.zeros((len(cells), len(cells)))
    for a, (t, r) in enumerate(cells):
        for b, (u, q) in enumerate(cells):
            lo, hi = min(t, u), max(t, u)
            block = np.linalg.matrix_power(phi[p], hi - lo) @ var[lo]
            cov[a, b] = block[r, q] if t >= u else block[q, r]
        cov[a, a] += err[p, t, r]
    mean = [x[p, t, r] @ beta for t, r in cells]
    return stats.multivariate_normal(mean, cov).logpdf([d[p, t, r] for t, r in cells])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_kernel_factor_is_the_dense_density(k):
    args = _kernel_case(k)
    log_c, acc = kalman_k(*args)
    rng = np.random.default_rng(7)
    for p in range(3):
        beta = rng.normal(size=k + 1)
        mine = log_c[p] - 0.5 * (
            acc[p, 0, 0] - 2 * beta @ acc[p, 1:, 0] + beta @ acc[p, 1:, 1:] @ beta
        )
        assert mine == pytest.approx(_dense_series(*args, p, beta), abs=1e-9)


@pytest.mark.parametrize(("k", "trend"), [(1, True), (2, False), (3, True)])
def test_kernel_gradient_matches_central_differences(k, trend):
    args = list(_kernel_case(k, seed=3, trend=trend))
    rng = np.random.default_rng(4)
    j1 = k + 1 + int(trend)
    g_log_c, g_acc = rng.normal(size=3), rng.normal(size=(3, j1, j1))

    def value(*a):
        log_c, acc = kalman_k(*a)
        return float(g_log_c @ log_c + np.sum(g_acc * acc))

    grads = kalman_k_vjp(*args, g_log_c, g_acc)
    for pos, grad in zip((0, 4, 5, 6, 7), grads, strict=True):
        num = np.zeros_like(args[pos])
        for ix in np.ndindex(num.shape):
            up, down = [a.copy() for a in args], [a.copy() for a in args]
            up[pos][ix] += 1e-6
            down[pos][ix] -= 1e-6
            num[ix] = (value(*up) - value(*down)) / 2e-6
        if pos == 0:  # only observed entries are data
            num, grad = num * args[2], grad * args[2]
        np.testing.assert_allclose(grad, num, atol=2e-6 * (1 + np.abs(num).max()))


def test_op_matches_kernel_and_its_gradient_compiles():
    d, x, o, first, phi, sigma, f, err = _kernel_case(2)
    pd_ = pt.tensor3("d")
    log_c, acc = filter_k(pd_, x, o, first, phi, sigma, f, err)
    out = pt.sum(log_c) + pt.sum(acc[:, 1:, 0])
    fn = pytensor.function([pd_], [out, pytensor.grad(out, pd_)])
    val, grad = fn(d)
    ref_c, ref_a = kalman_k(d, x, o, first, phi, sigma, f, err)
    assert val == pytest.approx(ref_c.sum() + ref_a[:, 1:, 0].sum(), abs=1e-10)
    assert np.all(grad[o == 0] == 0.0)


def test_integrating_a_level_is_the_gaussian_integral():
    rng = np.random.default_rng(2)
    nb, m = 3, 2
    a = rng.normal(size=(nb + m, nb + m))
    lam = a @ a.T * 0.5
    lam[0, :] = lam[:, 0] = 0.0  # a coefficient the data say nothing about
    eta, kappa = rng.normal(size=nb + m), 3.0
    prior = _spd(rng, nb)
    quad = Quadratic(lam[None], eta[None], np.array([kappa]), np.array([0.5]))
    out = quad.integrate(nb, np.linalg.cholesky(prior))
    tau = rng.normal(size=m)
    mine = out.log_c[0] - 0.5 * (out.kappa[0] - 2 * out.eta[0] @ tau + tau @ out.lam[0] @ tau)
    out_t = quad.integrate(nb, pt.as_tensor(np.linalg.cholesky(prior)), pt)
    assert out_t.log_c.eval()[0] == pytest.approx(out.log_c[0], abs=1e-12)
    # completing the square with the precision Lambda_bb + Sigma^-1 (dense)
    h = eta[:nb] - lam[:nb, nb:] @ tau
    c = kappa - 2 * eta[nb:] @ tau + tau @ lam[nb:, nb:] @ tau
    q = lam[:nb, :nb] + np.linalg.inv(prior)
    dense = (
        0.5 - 0.5 * c + 0.5 * h @ np.linalg.solve(q, h)
        - 0.5 * np.linalg.slogdet(prior)[1] - 0.5 * np.linalg.slogdet(q)[1]
    )  # fmt: skip
    assert mine == pytest.approx(dense, abs=1e-10)


def _design(design: str, therapists: int, end: bool) -> SeriesData:
    df, _ = simulate_mechanisms(
        seed=11,
        design=design,
        n_therapists=therapists,
        patients_per_therapist=3,
        n_sessions=5,
        missing=0.15,
        change_sd=0.1 if end else 0.0,
        end_effects=(0.5, 1.0) if end else None,
        end_therapist_sd=0.3 if end and therapists else 0.0,
    )
    df = df[~((df.patient == "p0001") & (df.session <= 2))]
    df = df[~((df.patient == "p0002") & (df.session >= 4))].reset_index(drop=True)
    if end:  # one patient without an end outcome
        df.loc[df.patient == "p0003", "post_symptoms"] = np.nan
    third = {"mediator": "mediator"} if design == "mediation" else {}
    if design == "informants":
        third = {"second_predictor": "alliance_therapist"}
    return SeriesData.from_frame(
        df,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        therapist="therapist" if therapists else None,
        end_outcome="post_symptoms" if end else None,
        **third,
    )


CASES = [
    ("mediation", 2, True, (1,)),
    ("mediation", 0, False, ()),
    ("informants", 2, False, (0, 2)),
    ("two_series", 0, True, (0,)),
    ("two_series", 3, True, ()),
    ("mediation", 0, True, (0, 1, 2)),  # every series with error
]


@pytest.mark.parametrize(("design", "therapists", "end", "error_at"), CASES)
def test_marginal_density_is_the_dense_joint_gaussian(design, therapists, end, error_at):
    data = _design(design, therapists, end)
    grid = MechanismGrid.of(data)
    k, n = data.k, data.n_patients
    rng = np.random.default_rng(5)
    n_coef = k + int(end)
    intercept = rng.normal(size=k)
    phi = rng.normal(scale=0.25, size=(n, k, k))
    sigma, first_cov, sigma_p = _spd(rng, k), _spd(rng, k), _spd(rng, n_coef) * 0.5
    sigma_t = _spd(rng, k) * 0.3 if therapists else None
    omega = np.zeros(k)
    omega[list(error_at)] = 0.4
    slope = 0.07 if end else None
    endp = None
    if end:
        endp = EndParams(
            0.3, 0.8, -0.6, 0.5 if therapists else None, 0.7, 0.4 if therapists else None
        )
    params = IntegratedParams(
        intercept, phi, sigma, first_cov, np.linalg.cholesky(sigma_p), slope, omega**2,
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
    )  # fmt: skip
    inputs = filter_inputs(data, grid, trend=end)
    logp, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, np)
    observed = np.isfinite(data.z)
    dense_end = None
    if end:
        assert endp is not None
        dense_end = EndOutcome(
            O=data.end_outcome, g0=0.3, gP=0.8, sdO=0.7, gT=endp.trait_therapist or 0.0,
            gS=-0.6, tauO=endp.sd_therapist or 0.0,
        )  # fmt: skip
    want = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time, intercept,
        phi, sigma, first_cov, sigma_p, omega, therapist=data.patient_therapist if therapists
        else None, sigma_t=sigma_t, trend=slope or 0.0, end=dense_end,
    )  # fmt: skip
    assert float(np.sum(logp)) == pytest.approx(want, abs=1e-8)
    # the same through the pytensor Op and graph
    logp_t, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, pt)
    assert float(pt.sum(logp_t).eval()) == pytest.approx(want, abs=1e-8)


def test_the_model_potential_is_the_marginal_density_at_its_parameters():
    data = _design("mediation", 2, True)
    spec = MechanismSpec(
        therapist_level=True, measurement_error=("mediator",), random_innovations=True
    )
    model = build_mechanism_model(data, spec)
    spec = spec.resolved(data)
    assert spec.traits == "integrated"
    names = [
        "intercept", "lag", "path_deviation", "sd_innovation", "corr_innovation", "sd_first",
        "corr_first", "sd_patient", "corr_patient", "sd_therapist", "corr_therapist", "trend",
        "measurement_error_sd", "sd_log_innovation", "log_innovation_offset",
        "end_intercept", "end_trait_effect_patient",
        "end_change_effect", "end_trait_effect_therapist", "end_sd", "sd_end_therapist",
    ]  # fmt: skip
    got, v = potential_at_random_point(model, names, seed=0, scale=0.2)

    def cov(name):
        return cov_of(v, name)

    idx = {r: i for i, r in enumerate(data.roles)}
    phi = np.broadcast_to(v["lag"], (data.n_patients, 3, 3)).copy()
    for r, (to, source) in enumerate(spec.random_paths or ()):
        phi[:, idx[to], idx[source]] += v["path_deviation"][:, r]
    err = np.zeros(3)
    err[idx["mediator"]] = v["measurement_error_sd"][0] ** 2
    # each patient's innovation SDs scaled by exp(sd_log * offset), correlations kept
    scale = np.exp(v["log_innovation_offset"] * v["sd_log_innovation"])
    sigma_i = np.einsum("pa,ab,pb->pab", scale, cov("innovation"), scale)
    params = IntegratedParams(
        v["intercept"], phi, sigma_i, cov("first"),
        np.linalg.cholesky(cov("patient")), v["trend"], err,
        np.linalg.cholesky(cov("therapist")),
        EndParams(v["end_intercept"], v["end_trait_effect_patient"], v["end_change_effect"],
                  v["end_trait_effect_therapist"], v["end_sd"], v["sd_end_therapist"]),
    )  # fmt: skip
    grid = MechanismGrid.of(data)
    want, _ = marginal_logp(data, filter_inputs(data, grid, True), grid.filled, grid.time, params)
    assert float(got) == pytest.approx(float(np.sum(want)), rel=1e-10)


def test_a_binary_end_outcome_keeps_sampled_traits_and_integrated_is_refused():
    df, _ = simulate_mechanisms(
        seed=3, design="two_series", patients_per_therapist=8, n_sessions=5,
        change_sd=0.1, end_effects=(0.5, 1.0), end_binary=True,
    )  # fmt: skip
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        end_outcome="dropout",
    )  # fmt: skip
    assert MechanismSpec().resolved(data).traits == "sampled"
    with pytest.raises(ValueError, match="binary"):
        MechanismSpec(traits="integrated").resolved(data)
    with pytest.raises(ValueError, match="measurement error needs"):
        MechanismSpec(measurement_error=("predictor",)).resolved(data)


def test_unknown_error_series_is_named():
    data = _design("two_series", 0, False)
    with pytest.raises(ValueError, match="'mediator'"):
        MechanismSpec(measurement_error=("mediator",)).resolved(data)


def _params(data, rng, end: bool, therapists: bool, error_at=()):
    k, n = data.k, data.n_patients
    n_coef = k + int(end)
    sigma_p = _spd(rng, n_coef) * 0.5
    sigma_t = _spd(rng, k) * 0.3 if therapists else None
    omega = np.zeros(k)
    omega[list(error_at)] = 0.4
    endp = None
    if end:
        endp = EndParams(
            0.3, 0.8, -0.6, 0.5 if therapists else None, 0.7, 0.4 if therapists else None
        )
    params = IntegratedParams(
        rng.normal(size=k), rng.normal(scale=0.25, size=(n, k, k)), _spd(rng, k), _spd(rng, k),
        np.linalg.cholesky(sigma_p), 0.07 if end else None, omega**2,
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
    )  # fmt: skip
    return params, sigma_p, sigma_t, omega


def _dense_args(data, grid, params, sigma_p, sigma_t, omega, therapists, rows=None):
    rows = np.arange(data.n_patients) if rows is None else np.asarray(rows)
    observed = np.isfinite(data.z)[rows]
    end = None
    if params.end is not None:
        e = params.end
        end = EndOutcome(
            O=data.end_outcome[rows], g0=e.intercept, gP=e.trait_patient, sdO=e.sd,
            gT=e.trait_therapist or 0.0, gS=e.change or 0.0, tauO=e.sd_therapist or 0.0,
        )  # fmt: skip
    ther = None
    if therapists:
        codes = data.patient_therapist[rows]
        ther = np.unique(codes, return_inverse=True)[1]
    return dict(
        values=np.where(observed, data.z[rows], 0.0), observed=observed,
        first=data.first[rows], last=data.last[rows], time=grid.time[rows],
        mu=params.intercept, phi=params.phi[rows],
        sigma=params.sigma[rows] if np.ndim(params.sigma) == 3 else params.sigma,
        first_cov=params.first_cov, sigma_p=sigma_p, omega=omega, therapist=ther,
        sigma_t=sigma_t, trend=params.trend or 0.0, end=end,
    )  # fmt: skip


@pytest.mark.parametrize("own_innovations", [False, True])
def test_each_patients_density_is_its_own_dense_gaussian_two_levels(own_innovations):
    from dataclasses import replace

    from bayes_alliance.mechanisms.integrated import patient_factors

    data = _design("mediation", 0, True)
    grid = MechanismGrid.of(data)
    rng = np.random.default_rng(8)
    params, sigma_p, _, omega = _params(data, rng, True, False, (2,))
    if own_innovations:  # random innovation variances: one covariance per patient
        params = replace(params, sigma=_spd(rng, data.k, (data.n_patients,)))
    after, _ = patient_factors(
        data, filter_inputs(data, grid, True), grid.filled, grid.time, params
    )
    for i in range(data.n_patients):
        want = dense_logp(**_dense_args(data, grid, params, sigma_p, None, omega, False, [i]))
        assert after.value()[i] == pytest.approx(want, abs=1e-8)


def test_the_therapists_posterior_is_the_dense_gaussian_conditional():
    from bayes_alliance.mechanisms.integrated import caseloads, patient_factors, therapist_prior
    from bayes_alliance.mechanisms.patient_density import therapist_posterior
    from tests.dense_k import dense_posterior

    data = _design("two_series", 3, True)
    grid = MechanismGrid.of(data)
    rng = np.random.default_rng(9)
    params, sigma_p, sigma_t, omega = _params(data, rng, True, True, (0,))
    after, _ = patient_factors(
        data, filter_inputs(data, grid, True), grid.filled, grid.time, params
    )
    mean, prec = therapist_posterior(after, caseloads(data), therapist_prior(params, data.k))
    want = dense_posterior(**_dense_args(data, grid, params, sigma_p, sigma_t, omega, True))
    k = data.k
    np.testing.assert_allclose(mean[:, :k], want.therapist_mean, atol=1e-8)
    cov = np.linalg.inv(prec)
    np.testing.assert_allclose(cov[:, :k, :k], want.therapist_cov, atol=1e-8)
    np.testing.assert_allclose(mean[:, k], want.end_mean, atol=1e-8)
    np.testing.assert_allclose(cov[:, k, k], want.end_var, atol=1e-8)


def test_patient_values_given_the_drawn_therapist_part_are_dense_densities():
    from bayes_alliance.mechanisms.integrated import caseloads, patient_factors, therapist_prior
    from bayes_alliance.mechanisms.patient_density import (
        params_of,
        patient_loglik,
        therapist_posterior,
    )

    data = _design("mediation", 2, True)
    spec = MechanismSpec(therapist_level=True, measurement_error=("mediator",)).resolved(data)
    rng = np.random.default_rng(4)
    k, n = data.k, data.n_patients

    def cov_parts(c):
        sd = np.sqrt(np.diag(c))
        return sd, c / np.outer(sd, sd)

    draw = {
        "lag": rng.normal(scale=0.2, size=(k, k)),
        "path_deviation": rng.normal(scale=0.1, size=(n, 2)),
        "intercept": rng.normal(size=k),
        "trend": np.array(0.05),
        "measurement_error_sd": np.array([0.3]),
        "end_intercept": np.array(0.2),
        "end_trait_effect_patient": np.array(0.7),
        "end_change_effect": np.array(-0.4),
        "end_trait_effect_therapist": np.array(0.3),
        "end_sd": np.array(0.8),
        "sd_end_therapist": np.array(0.35),
    }
    for name, size, scale in (("innovation", k, 1), ("first", k, 1), ("patient", k + 1, 0.5)):
        draw[f"sd_{name}"], draw[f"corr_{name}"] = cov_parts(_spd(rng, size) * scale)
    draw["sd_therapist"], draw["corr_therapist"] = cov_parts(_spd(rng, k) * 0.3)
    post = {name: np.asarray(v)[None, None] for name, v in draw.items()}
    got = patient_loglik(post, data, spec, seed=11)[0, 0]
    # the same therapist draw, then each patient's dense density given it
    params = params_of(draw, data, spec)
    grid = MechanismGrid.of(data)
    after, _ = patient_factors(
        data, filter_inputs(data, grid, True), grid.filled, grid.time, params
    )
    mean, prec = therapist_posterior(after, caseloads(data), therapist_prior(params, k))
    z = np.random.default_rng(11).standard_normal(mean.shape)
    tau = (
        mean + np.linalg.solve(np.swapaxes(np.linalg.cholesky(prec), -1, -2), z[..., None])[..., 0]
    )
    e = params.end
    sigma_p = params.chol_patient @ params.chol_patient.T
    for i in range(n):
        t = tau[data.patient_therapist[i]]
        shifted = IntegratedParams(
            params.intercept + t[:k], params.phi, params.sigma, params.first_cov,
            params.chol_patient, params.trend, params.error, None,
            EndParams(e.intercept + t[k] + e.trait_therapist * t[0], e.trait_patient, e.change,
                      None, e.sd, None),
        )  # fmt: skip
        args = _dense_args(data, grid, shifted, sigma_p, None, np.sqrt(params.error), False, [i])
        assert got[i] == pytest.approx(dense_logp(**args), abs=1e-8)


def test_change_reliability_counts_a_one_session_patient_as_zero():
    """The integrated form's change reliability: the mean over patients of tau^2 p_i / (1 +
    tau^2 p_i), p_i = x' Omega_i^-1 x the GLS precision of patient i's change given its means
    (dense covariance Omega_i of its observed cells); a one-session patient has p_i = 0 and
    does not make the whole reliability 0."""
    df, _ = simulate_mechanisms(
        seed=2, design="two_series", patients_per_therapist=6, n_sessions=5, missing=0.1,
        change_sd=0.1, end_effects=(0.5, 1.0),
    )  # fmt: skip
    df = df[~((df.patient == "p0001") & (df.session >= 2))].reset_index(drop=True)
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        end_outcome="post_symptoms",
    )  # fmt: skip
    model = build_mechanism_model(data, MechanismSpec())
    names = ["change_reliability", "sd_trend", "lag", "sd_innovation", "corr_innovation"]
    names += ["sd_first", "corr_first"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    point = model.initial_point()
    rng = np.random.default_rng(1)
    v = dict(zip(names, fn(*(point[x.name] + rng.normal(scale=0.2, size=point[x.name].shape)
                            for x in model.value_vars)), strict=True))  # fmt: skip
    cov_e = v["corr_innovation"] * np.outer(v["sd_innovation"], v["sd_innovation"])
    cov_1 = v["corr_first"] * np.outer(v["sd_first"], v["sd_first"])
    grid = MechanismGrid.of(data)
    prec = []
    for i in range(data.n_patients):
        f, last = data.first[i], data.last[i]
        var = [cov_1]
        for _ in range(f + 1, last + 1):
            var.append(v["lag"] @ var[-1] @ v["lag"].T + cov_e)
        cells = [
            (t, r) for t in range(f, last + 1) for r in range(2) if np.isfinite(data.z[i, t, r])
        ]
        omega = np.zeros((len(cells), len(cells)))
        for a, (t, r) in enumerate(cells):
            for b, (u, q) in enumerate(cells):
                lo, hi = min(t, u), max(t, u)
                block = np.linalg.matrix_power(v["lag"], hi - lo) @ var[lo - f]
                omega[a, b] = block[r, q] if t >= u else block[q, r]
        x = np.array([grid.time[i, t] if r == 0 else 0.0 for t, r in cells])
        prec.append(x @ np.linalg.solve(omega, x))
    assert prec[1] == 0.0  # p0001 has one session
    tau2 = float(v["sd_trend"]) ** 2
    want = np.mean([tau2 * p / (1 + tau2 * p) for p in prec])
    assert 0.0 < want and float(v["change_reliability"]) == pytest.approx(want, rel=1e-9)


def test_the_whole_models_gradient_matches_central_differences():
    data = _design("mediation", 2, True)
    spec = MechanismSpec(
        therapist_level=True,
        measurement_error=("predictor", "mediator", "outcome"),
        random_paths=(("predictor", "predictor"), ("outcome", "mediator")),
    )
    model = build_mechanism_model(data, spec)
    logp = model.logp()
    fn = pytensor.function(model.value_vars, [logp, *pytensor.grad(logp, model.value_vars)])
    point = model.initial_point()
    rng = np.random.default_rng(3)
    x0 = [
        np.array(point[v.name] + rng.normal(scale=0.1, size=point[v.name].shape), dtype=float)
        for v in model.value_vars
    ]
    _, *grads = fn(*x0)
    for j, (x, g) in enumerate(zip(x0, grads, strict=True)):
        flat = np.atleast_1d(x).reshape(-1)
        for ix in range(0, flat.size, max(1, flat.size // 4)):  # a few entries of each
            up, down = [a.copy() for a in x0], [a.copy() for a in x0]
            up[j].reshape(-1)[ix] += 1e-6  # a view, also of a 0-d array
            down[j].reshape(-1)[ix] -= 1e-6
            num = (fn(*up)[0] - fn(*down)[0]) / 2e-6
            assert np.atleast_1d(g).reshape(-1)[ix] == pytest.approx(num, rel=1e-5, abs=1e-5)
