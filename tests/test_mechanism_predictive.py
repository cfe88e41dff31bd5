"""Posterior predictive replicates of the mechanism models (:mod:`bayes_alliance.mechanisms.
predictive`) against truths built without them: the latent parts' conditional against plain
Gaussian conditioning of the dense joint (``tests/dense_k.py``), the replicates' distribution
against the dense joint Gaussian of every observed cell and end outcome, the sampled form's end
outcome against the model builder's own density, and the report of a small fit.

Monte Carlo tolerance as in ``tests/test_dense_k.py``: every empirical mean and covariance entry
divided by its standard error (Isserlis for the covariances) is about N(0, 1); the largest of a
few hundred exceeds 5 with probability < 1e-3 (fixed seeds), and the same check rejects a model
that is wrong in one part (``test_replicates_...``'s wrong variants).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytensor
import pytest
from scipy import special

from bayes_alliance.data.series_data import SeriesData
from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    patient_factors,
)
from bayes_alliance.mechanisms.predictive import (
    Latents,
    conditional_latents,
    full_factor,
    integrated_latents,
    patient_conditional,
    replicate,
    sampled_latents,
)
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.sim.mechanisms import simulate_mechanisms
from tests.dense_k import (
    EndOutcome,
    dense_joint,
    dense_posterior,
    gaussian_condition,
    stack_observed,
)

Z_MAX = 5.0


def _spd(rng: np.random.Generator, n: int, scale: float = 1.0, lead: tuple = ()) -> np.ndarray:
    a = rng.normal(size=(*lead, n, n))
    return scale * (a @ np.swapaxes(a, -1, -2) / n + 0.5 * np.eye(n))


def _max_z(y: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    """Largest |z| of the empirical mean and covariance entries of the rows of ``y``."""
    n = y.shape[0]
    z_mean = (y.mean(axis=0) - mean) / np.sqrt(np.diag(cov) / n)
    var = np.diag(cov)
    z_cov = (np.cov(y, rowvar=False) - cov) / np.sqrt((np.outer(var, var) + cov**2) / n)
    return float(max(np.abs(z_mean).max(), np.abs(z_cov).max()))


def _series(design: str, therapists: int, end: bool) -> SeriesData:
    """Tiny data with a late starter, an early stopper, holes and a missing end outcome."""
    df, _ = simulate_mechanisms(
        seed=3, design=design, n_therapists=therapists, patients_per_therapist=3, n_sessions=5,
        missing=0.15, change_sd=0.1 if end else 0.0, end_effects=(0.5, 1.0) if end else None,
        end_therapist_sd=0.3 if end and therapists else 0.0,
    )  # fmt: skip
    df = df[~((df.patient == "p0001") & (df.session <= 2))]
    df = df[~((df.patient == "p0002") & (df.session >= 4))].reset_index(drop=True)
    if end:
        df.loc[df.patient == "p0003", "post_symptoms"] = np.nan
    third = {"mediator": "mediator"} if design == "mediation" else {}
    return SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist" if therapists else None,
        end_outcome="post_symptoms" if end else None, **third,
    )  # fmt: skip


def _params(data: SeriesData, seed: int, end: bool, therapists: bool, error_at=()):
    """Random parameters of the integrated form (a trend with an end outcome), and the
    covariances Sigma_P, Sigma_T they hold."""
    rng = np.random.default_rng(seed)
    k, n = data.k, data.n_patients
    sigma_p = _spd(rng, k + int(end), 0.6)
    sigma_t = _spd(rng, k, 0.3) if therapists else None
    error = np.zeros(k)
    error[list(error_at)] = 0.3**2
    endp = None
    if end:
        endp = EndParams(0.3, 0.8, -0.6, 0.5 if therapists else None, 0.7,
                         0.4 if therapists else None)  # fmt: skip
    params = IntegratedParams(
        rng.normal(size=k), rng.normal(scale=0.25, size=(n, k, k)), _spd(rng, k),
        _spd(rng, k), np.linalg.cholesky(sigma_p), 0.07 if end else None, error,
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
    )  # fmt: skip
    return params, sigma_p, sigma_t


def _dense_posterior(data, grid, params, sigma_p, sigma_t):
    observed = np.isfinite(data.z)
    end = None
    if params.end is not None:
        e = params.end
        end = EndOutcome(
            O=data.end_outcome, g0=e.intercept, gP=e.trait_patient, sdO=e.sd,
            gT=e.trait_therapist or 0.0, gS=e.change or 0.0, tauO=e.sd_therapist or 0.0,
        )  # fmt: skip
    return dense_posterior(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time,
        params.intercept, params.phi, params.sigma, params.first_cov, sigma_p,
        np.sqrt(params.error), therapist=data.patient_therapist if sigma_t is not None else None,
        sigma_t=sigma_t, trend=params.trend or 0.0, end=end,
    )  # fmt: skip


CASES = [
    ("mediation", 2, True, (1,)),  # three levels, end outcome, trend, measurement error
    ("two_series", 3, False, ()),  # three levels, series only
    ("mediation", 0, True, (0, 2)),  # two levels
]


@pytest.mark.parametrize(("design", "therapists", "end", "error_at"), CASES)
def test_patients_conditional_given_tau_is_the_dense_gaussian_conditional(
    design, therapists, end, error_at
):
    """b_i | tau, y (exact moments) equals the dense joint posterior of all traits conditioned
    on the therapists' parts by plain Gaussian conditioning; patients are independent given
    tau."""
    data = _series(design, therapists, end)
    grid = MechanismGrid.of(data)
    params, sigma_p, sigma_t = _params(data, 7, end, bool(therapists), error_at)
    k, n = data.k, data.n_patients
    n_coef = k + int(end)
    _, acc = patient_factors(data, filter_inputs(data, grid, end), grid.filled, grid.time, params)
    factor = full_factor(data, acc, params, n_coef)
    dense = _dense_posterior(data, grid, params, sigma_p, sigma_t)
    mean_b = dense.joint_mean
    cov_b = dense.joint_cov
    tau_rows = None
    if therapists:
        m = k + int(end)
        tau = np.random.default_rng(1).normal(size=(therapists, m))
        given = n * n_coef + np.arange(therapists * m)
        values = tau[:, :k].ravel()
        if end:
            values = np.concatenate([values, tau[:, k]])
        rest, mean_b, cov_b = gaussian_condition(dense.joint_mean, dense.joint_cov, given, values)
        np.testing.assert_array_equal(rest, np.arange(n * n_coef))
        tau_rows = tau[data.patient_therapist]
    mean, prec = patient_conditional(factor, n_coef, params.chol_patient, tau_rows)
    np.testing.assert_allclose(mean, mean_b.reshape(n, n_coef), atol=1e-8)
    cov = np.linalg.inv(prec)
    for i in range(n):
        for j in range(n):
            block = cov_b[i * n_coef : (i + 1) * n_coef, j * n_coef : (j + 1) * n_coef]
            want = cov[i] if i == j else np.zeros((n_coef, n_coef))
            np.testing.assert_allclose(block, want, atol=1e-8)


@pytest.mark.parametrize(("design", "therapists", "end", "error_at"), CASES[::2])
def test_drawn_latents_have_the_dense_joint_posterior(design, therapists, end, error_at):
    """tau_j from its posterior, then b_i given it: over many draws the joint (b, u, uO) has
    the dense posterior's mean and covariance (cross-covariances included)."""
    data = _series(design, therapists, end)
    grid = MechanismGrid.of(data)
    params, sigma_p, sigma_t = _params(data, 8, end, bool(therapists), error_at)
    dense = _dense_posterior(data, grid, params, sigma_p, sigma_t)
    n_draws, k = 20_000, data.k
    inputs = filter_inputs(data, grid, end)
    b, tau = conditional_latents(
        data, grid, inputs, params, np.random.default_rng(2), size=(n_draws,)
    )
    parts = [b.reshape(n_draws, -1)]
    if tau is not None:
        parts.append(tau[..., :k].reshape(n_draws, -1))
        if end:
            parts.append(tau[..., k])
    draws = np.concatenate(parts, axis=1)
    assert _max_z(draws, dense.joint_mean, dense.joint_cov) < Z_MAX


def _replicate_design(seed: int = 4):
    """Four patients of two therapists on five columns (a late start, an early stop, holes),
    three series with measurement error on one, own innovation covariances, a trend and an
    end outcome missing for one patient."""
    rng = np.random.default_rng(seed)
    p, s, k = 4, 5, 3
    first, last = np.array([0, 1, 0, 1]), np.array([4, 4, 3, 4])
    observed = np.zeros((p, s, k), dtype=bool)
    for i in range(p):
        observed[i, first[i] : last[i] + 1] = True
    observed[0, 2] = False
    observed[3, 3, 0] = False
    time = np.arange(s)[None, :] - 0.5 * (first + last)[:, None]
    omega = np.array([0.0, 0.5, 0.0])
    sigma_p = _spd(rng, k + 1, 0.8)
    sigma_p[k] *= 0.3
    sigma_p[:, k] *= 0.3
    lag = rng.normal(size=(p, k, k))
    lag = 0.6 * lag / np.abs(np.linalg.eigvals(lag)).max(axis=-1)[:, None, None]
    end = EndParams(1.0, 0.8, 0.6, -0.5, 0.7, 0.4)
    params = IntegratedParams(
        rng.normal(size=k), lag, _spd(rng, k, 0.5, (p,)), _spd(rng, k),
        np.linalg.cholesky(sigma_p), 0.3, omega**2, np.linalg.cholesky(_spd(rng, k, 0.6)), end,
    )  # fmt: skip
    therapist = np.array([0, 1, 0, 1])
    end_observed = np.array([True, False, True, True])
    return params, first, last, time, observed, therapist, end_observed


def _end(params: IntegratedParams, end_observed: np.ndarray) -> EndOutcome:
    e = params.end
    assert e is not None
    return EndOutcome(
        O=np.where(end_observed, 0.0, np.nan), g0=e.intercept, gP=e.trait_patient, sdO=e.sd,
        gT=e.trait_therapist, gS=e.change, tauO=e.sd_therapist,
    )  # fmt: skip


def _dense_marginal(design: tuple, **override):
    params, first, last, time, observed, therapist, end_observed = design
    args = dict(
        mu=params.intercept, phi=params.phi, sigma=params.sigma, first_cov=params.first_cov,
        sigma_p=params.chol_patient @ params.chol_patient.T, omega=np.sqrt(params.error),
        therapist=therapist, sigma_t=params.chol_therapist @ params.chol_therapist.T,
        trend=params.trend, end=_end(params, end_observed),
    )  # fmt: skip
    args.update(override)
    mean, cov, _ = dense_joint(np.zeros(observed.shape), observed, first, last, time, **args)
    return mean, cov


def test_replicates_from_prior_latents_have_the_dense_marginal_moments():
    """Latent parts drawn from their prior and passed through the replicate step: the observed
    cells and end outcomes have the dense model's marginal mean and covariance (levels,
    therapist parts, trend and change loadings, the VAR with each patient's own lag and
    innovation covariance, the first-cell law, measurement error, the end regression); the
    same check rejects models wrong in one part."""
    params, first, last, time, observed, therapist, end_observed = _replicate_design()
    rng = np.random.default_rng(5)
    n, p, k = 40_000, len(first), params.intercept.size
    sigma_p = params.chol_patient @ params.chol_patient.T
    sigma_t = params.chol_therapist @ params.chol_therapist.T
    b = rng.multivariate_normal(np.zeros(k + 1), sigma_p, size=(n, p))
    u = rng.multivariate_normal(np.zeros(k), sigma_t, size=(n, 2))
    u_end = params.end.sd_therapist * rng.standard_normal((n, 2, 1))
    latents = integrated_latents(params, b, np.concatenate([u, u_end], -1), therapist)
    series, end = replicate(params, latents, first, last, time, rng)
    inside = (np.arange(time.shape[1]) >= first[:, None]) & (
        np.arange(time.shape[1]) <= last[:, None]
    )
    assert np.isfinite(series[:, inside]).all() and np.isnan(series[:, ~inside]).all()
    y = stack_observed(series, observed, end, np.broadcast_to(end_observed, end.shape))
    design = (params, first, last, time, observed, therapist, end_observed)
    mean, cov = _dense_marginal(design)
    assert _max_z(y, mean, cov) < Z_MAX
    wrong = {
        "lag transposed": dict(phi=np.swapaxes(params.phi, -1, -2)),
        "no measurement error": dict(omega=np.zeros(k)),
        "first state 1.3 F": dict(first_cov=1.3 * params.first_cov),
        "end loading gT = 0": dict(end=replace(_end(params, end_observed), gT=0.0)),
        "no therapists": dict(therapist=None, sigma_t=None),
    }
    for name, override in wrong.items():
        mean, cov = _dense_marginal(design, **override)
        assert _max_z(y, mean, cov) > 2 * Z_MAX, name


def test_given_fixed_latents_replicates_have_the_dense_conditional_moments():
    """With one fixed draw of the latent parts the replicates' covariance is the dense model's
    with Sigma_P = 0 and no therapists (only the states and the noise vary), and the mean of
    every cell is the dense mean of a patient whose intercept is its drawn level and whose
    trend is its drawn slope."""
    params, first, last, time, observed, _, _ = _replicate_design(seed=6)
    rng = np.random.default_rng(7)
    p, k = len(first), params.intercept.size
    level, slope = rng.normal(size=(p, k)), rng.normal(scale=0.2, size=p)
    n = 40_000
    latents = Latents(np.broadcast_to(level, (n, p, k)), np.broadcast_to(slope, (n, p)))
    series, end = replicate(params, latents, first, last, time, rng)
    assert end is None
    for i in range(p):
        rows = slice(i, i + 1)
        mean, cov, _ = dense_joint(
            np.zeros(observed[rows].shape), observed[rows], first[rows], last[rows],
            time[rows], level[i], params.phi[rows], params.sigma[rows], params.first_cov,
            np.zeros((k, k)), np.sqrt(params.error), trend=slope[i],
        )  # fmt: skip
        y = stack_observed(series[:, rows], observed[rows])
        assert _max_z(y, mean, cov) < Z_MAX, i


def test_binary_end_replicates_are_bernoulli_of_the_logit():
    logit = np.array([-2.0, 0.0, 0.7, 3.0])
    n = 40_000
    latents = Latents(np.zeros((n, 4, 1)), None, np.broadcast_to(logit, (n, 4)), None)
    params = IntegratedParams(
        np.zeros(1), np.zeros((4, 1, 1)), np.eye(1), np.eye(1), np.eye(1), error=np.zeros(1)
    )
    _, end = replicate(
        params, latents, np.zeros(4, int), np.zeros(4, int), np.zeros((4, 1)),
        np.random.default_rng(3),
    )  # fmt: skip
    prob = special.expit(logit)
    assert set(np.unique(end)) == {0.0, 1.0}
    z = (end.mean(axis=0) - prob) / np.sqrt(prob * (1 - prob) / n)
    assert np.abs(z).max() < Z_MAX


@pytest.mark.parametrize("binary", [True, False])
def test_sampled_form_end_mean_is_the_models_linear_predictor(binary):
    """The sampled form's end outcome: the Bernoulli (or normal) log density of the observed
    outcomes under the latent parts read from a point of the built model equals the model's own
    log density of ``end_outcome`` at that point."""
    from bayes_alliance.mechanisms.model import build_mechanism_model
    from bayes_alliance.mechanisms.patient_density import params_of
    from bayes_alliance.mechanisms.spec import MechanismSpec

    df, _ = simulate_mechanisms(
        seed=5, design="two_series", n_therapists=2, patients_per_therapist=4, n_sessions=4,
        change_sd=0.1, end_effects=(0.5, 1.0), end_binary=binary, end_therapist_sd=0.3,
    )  # fmt: skip
    column = "dropout" if binary else "post_symptoms"
    df.loc[df.patient == "p0002", column] = np.nan
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        therapist="therapist", end_outcome=column,
    )  # fmt: skip
    spec = MechanismSpec(therapist_level=True, traits="sampled").resolved(data)
    model = build_mechanism_model(data, spec)
    names = [
        "intercept", "lag", "trait", "change_deviation", "trend", "sd_patient", "corr_patient",
        "sd_innovation", "corr_innovation", "sd_first", "corr_first", "sd_therapist",
        "corr_therapist", "therapist_offset", "end_therapist_offset", "sd_end_therapist",
        "end_intercept", "end_trait_effect_patient", "end_trait_effect_therapist",
        "end_change_effect",
    ] + ([] if binary else ["end_sd"])  # fmt: skip
    outs = model.replace_rvs_by_values([model[n] for n in names])
    logp = model.logp(vars=[model["end_outcome"]])
    fn = pytensor.function(
        model.value_vars, [*outs, logp], on_unused_input="ignore", mode="FAST_COMPILE"
    )
    rng = np.random.default_rng(1)
    point = model.initial_point()
    values = [point[v.name] + rng.normal(scale=0.4, size=point[v.name].shape)
              for v in model.value_vars]  # fmt: skip
    *got, want = fn(*values)
    draw = dict(zip(names, got, strict=True))
    params = params_of(draw, replace(data, end_outcome=None), spec)
    latents = sampled_latents(draw, data, params)
    seen = np.isfinite(data.end_outcome)
    lin, obs = latents.end_mean[seen], data.end_outcome[seen]
    if binary:
        assert latents.end_sd is None
        mine = np.sum(obs * lin - np.logaddexp(0.0, lin))
    else:
        sd = latents.end_sd
        mine = np.sum(-0.5 * ((obs - lin) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi))
    assert mine == pytest.approx(float(want), abs=1e-8)
    # the levels are the model's traits, the slopes its trend plus each change
    np.testing.assert_allclose(latents.level, draw["trait"])
    np.testing.assert_allclose(latents.slope, draw["trend"] + draw["change_deviation"])
    # a saved three-level fit keeps no therapist offsets: the end outcome is left out
    stored = {n: v for n, v in draw.items() if n != "therapist_offset"}
    assert sampled_latents(stored, data, params).end_mean is None


@pytest.fixture(scope="module")
def small_fit():
    """One small three-level fit with a mediator, a Gaussian end outcome and a trend."""
    from bayes_alliance.mechanisms.fit import fit_mechanisms
    from bayes_alliance.mechanisms.spec import MechanismSpec

    df, _ = simulate_mechanisms(
        seed=2, design="mediation", n_therapists=3, patients_per_therapist=4, n_sessions=6,
        missing=0.05, change_sd=0.1, end_effects=(0.5, 1.0), end_therapist_sd=0.2,
    )  # fmt: skip
    data = SeriesData.from_frame(
        df, patient="patient", session="session", predictor="alliance", outcome="symptoms",
        mediator="mediator", therapist="therapist", end_outcome="post_symptoms",
    )  # fmt: skip
    spec = MechanismSpec(therapist_level=True, random_paths=(), measurement_error=("mediator",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mechanisms(data, spec, draws=30, tune=30, chains=1, random_seed=4,
                              progressbar=False)  # fmt: skip


def test_fit_replicates_every_observed_cell_and_reads_back_the_same(small_fit, tmp_path):
    from bayes_alliance.mechanisms.fit import load_mechanisms

    checks = small_fit.posterior_predictive(n_draws=12)
    pp, obs = checks["posterior_predictive"], checks["observed_data"]
    data = small_fit.data
    for r, role in enumerate(data.roles):
        assert pp[role].shape == (1, 12, int(np.isfinite(data.z[..., r]).sum()))
        assert np.isfinite(pp[role].values).all()
        np.testing.assert_array_equal(obs[role].values, data.z[..., r][np.isfinite(data.z[..., r])])
    assert pp["end_outcome"].shape == (1, 12, int(np.isfinite(data.end_outcome).sum()))
    # every draw once when fewer than asked; the fit's seed makes it reproducible
    again = small_fit.posterior_predictive(n_draws=12)
    np.testing.assert_array_equal(again["posterior_predictive"]["outcome"].values,
                                  pp["outcome"].values)  # fmt: skip
    assert small_fit.posterior_predictive(n_draws=500)["posterior_predictive"].sizes["draw"] == 30
    # a saved fit keeps every name the replicates read
    path = small_fit.save(tmp_path / "fit.nc")
    loaded = load_mechanisms(path).posterior_predictive(n_draws=12)
    for role in (*data.roles, "end_outcome"):
        np.testing.assert_allclose(loaded["posterior_predictive"][role].values, pp[role].values)


def test_report_has_the_predictive_check_and_its_figures(small_fit, tmp_path):
    from bayes_alliance.report.write import write_report

    html = write_report(small_fit, tmp_path / "report")
    md = (html.parent / "report.md").read_text()
    assert "Posterior predictive check" in md
    assert "ppc.png" in md and "ppc_end_outcome.png" in md
    assert (html.parent / "ppc.png").is_file() and (html.parent / "ppc_end_outcome.png").is_file()
    assert "post_symptoms" in md and "replicated" in md


def test_an_end_outcome_is_left_out_where_the_draws_cannot_give_its_predictor():
    """A sampled-form file written before the trait's end effect was split by level holds one
    ``end_trait_effect``: the series are replicated, the end outcome is not."""
    data = _series("two_series", 0, True)
    params, _, _ = _params(data, 3, True, False)
    draw = {
        "trait": np.ones((data.n_patients, data.k)), "change_deviation": np.zeros(data.n_patients),
        "intercept": params.intercept, "end_intercept": 0.0, "end_trait_effect": 0.5,
        "end_change_effect": 0.1, "end_sd": 1.0,
    }  # fmt: skip
    latents = sampled_latents(draw, data, params)
    assert latents.end_mean is None and latents.slope is not None


def test_replicates_carry_every_known_mean_shift():
    # A baseline's shifts (means and the end outcome's direct path) and each patient's known
    # coefficient mean (random lags that covary with the traits): the replicates' moments are
    # the dense marginal's with those means, and far from it without either.
    from bayes_alliance.mechanisms.baseline import shifts
    from tests.dense_k import Baseline

    params, first, last, time, observed, therapist, end_observed = _replicate_design()
    rng = np.random.default_rng(5)
    n, p, k = 40000, len(first), params.intercept.size
    zb, gamma, cz = rng.normal(size=(p, 1)), rng.normal(size=(k, 1)), np.array([0.7])
    assert params.end is not None
    mean_shift, end_shift = shifts(zb, gamma, cz, params.end.trait_patient)
    m = rng.normal(size=(p, k + 1))
    params = replace(
        params, baseline=mean_shift, patient_mean=m, end=replace(params.end, shift=end_shift)
    )
    sp = params.chol_patient @ params.chol_patient.T
    st = params.chol_therapist @ params.chol_therapist.T
    b = rng.multivariate_normal(np.zeros(k + 1), sp, size=(n, p))
    u = rng.multivariate_normal(np.zeros(k), st, size=(n, 2))
    ue = params.end.sd_therapist * rng.standard_normal((n, 2, 1))
    lat = integrated_latents(params, b, np.concatenate([u, ue], -1), therapist)
    series, end = replicate(params, lat, first, last, time, rng)
    y = stack_observed(series, observed, end, np.broadcast_to(end_observed, end.shape))
    e = replace(_end(params, end_observed), cz=cz)

    def dense(**changed):
        args = dict(
            mu=params.intercept, phi=params.phi, sigma=params.sigma,
            first_cov=params.first_cov, sigma_p=sp, omega=np.sqrt(params.error),
            therapist=therapist, sigma_t=st, trend=params.trend, end=e,
            baseline=Baseline(zb, gamma), coef_mean=m,
        )  # fmt: skip
        args.update(changed)
        mean, cov, _ = dense_joint(np.zeros(observed.shape), observed, first, last, time, **args)
        return mean, cov

    assert _max_z(y, *dense()) < Z_MAX
    assert _max_z(y, *dense(coef_mean=None)) > 10 * Z_MAX
    assert _max_z(y, *dense(baseline=None, end=replace(e, cz=None))) > 10 * Z_MAX
