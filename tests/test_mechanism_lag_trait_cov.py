"""Random lags that covary with the latent means (``lag_trait_covariance``): each patient's
coefficients are integrated given its lag deviations, checked against the dense Gaussian with
the conditional moments worked out by plain Gaussian conditioning; the model's potential; the
per-draw reconstruction; the options' checks."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from bayes_alliance.mechanisms.integrated import (
    EndParams,
    IntegratedParams,
    filter_inputs,
    marginal_logp,
)
from bayes_alliance.mechanisms.model import build_mechanism_model
from bayes_alliance.mechanisms.patient_density import patient_level
from bayes_alliance.mechanisms.priors import MechanismGrid
from bayes_alliance.mechanisms.spec import MechanismSpec
from tests.dense_k import EndOutcome, dense_logp
from tests.model_points import cov_of, potential_at_random_point
from tests.test_mechanism_integrated import _design, _spd


def _condition(joint: np.ndarray, n_d: int, dev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (P, J) and covariance of b given d by the textbook formulas."""
    s_dd, s_bd, s_bb = joint[:n_d, :n_d], joint[n_d:, :n_d], joint[n_d:, n_d:]
    gain = s_bd @ np.linalg.inv(s_dd)
    return dev @ gain.T, s_bb - gain @ s_bd.T


@pytest.mark.parametrize("therapists", [0, 2])
def test_coefficients_given_the_lag_deviations_match_the_dense_gaussian(therapists):
    data = _design("mediation", therapists, True)
    grid = MechanismGrid.of(data)
    k, n = data.k, data.n_patients
    rng = np.random.default_rng(9)
    n_d, n_b = 2, k + 1  # random a and b paths; latent means and the change
    joint = _spd(rng, n_d + n_b) * 0.3
    dev = rng.multivariate_normal(np.zeros(n_d), joint[:n_d, :n_d], size=n)
    mean_b, cov_b = _condition(joint, n_d, dev)
    m, x, y = data.index("mediator"), data.index("predictor"), data.index("outcome")
    phi = np.broadcast_to(rng.normal(scale=0.2, size=(k, k)), (n, k, k)).copy()
    phi[:, m, x] += dev[:, 0]
    phi[:, y, m] += dev[:, 1]
    intercept = rng.normal(size=k)
    sigma, first_cov = _spd(rng, k), _spd(rng, k)
    sigma_t = _spd(rng, k) * 0.3 if therapists else None
    endp = EndParams(0.3, 0.8, -0.6, 0.5 if therapists else None, 0.7, 0.4 if therapists else None)
    low = np.linalg.cholesky(joint)
    params = IntegratedParams(
        intercept, phi, sigma, first_cov, low[n_d:, n_d:], 0.07, np.zeros(k),
        None if sigma_t is None else np.linalg.cholesky(sigma_t), endp,
    )  # fmt: skip
    # the integrated model's form: b_i | d_i = L_bd z_i + L_bb u_i, z_i = L_dd^-1 d_i
    params.patient_mean = np.linalg.solve(low[:n_d, :n_d], dev.T).T @ low[n_d:, :n_d].T
    inputs = filter_inputs(data, grid, trend=True)
    got, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, np)
    observed = np.isfinite(data.z)
    dense_end = EndOutcome(
        O=data.end_outcome, g0=0.3, gP=0.8, sdO=0.7, gT=endp.trait_therapist or 0.0, gS=-0.6,
        tauO=endp.sd_therapist or 0.0,
    )  # fmt: skip
    want = dense_logp(
        np.where(observed, data.z, 0.0), observed, data.first, data.last, grid.time, intercept,
        phi, sigma, first_cov, cov_b, np.zeros(k),
        therapist=data.patient_therapist if therapists else None, sigma_t=sigma_t, trend=0.07,
        end=dense_end, coef_mean=mean_b,
    )  # fmt: skip
    assert float(np.sum(got)) == pytest.approx(want, abs=1e-8)
    # ignoring the covariance gives another density (the test can fail)
    params.patient_mean = None
    params.chol_patient = np.linalg.cholesky(joint[n_d:, n_d:])
    other, _ = marginal_logp(data, inputs, grid.filled, grid.time, params, np)
    assert abs(float(np.sum(other)) - want) > 0.1


def test_the_models_potential_and_the_draws_reconstruction_agree():
    data = _design("mediation", 2, True)
    spec = MechanismSpec(therapist_level=True, lag_trait_covariance=True)
    model = build_mechanism_model(data, spec)
    spec = spec.resolved(data)
    names = [
        "intercept", "lag", "path_offset", "path_deviation", "sd_paths", "corr_paths",
        "sd_patient", "corr_patient", "corr_paths_patient", "sd_innovation", "corr_innovation",
        "sd_first", "corr_first", "sd_therapist", "corr_therapist", "trend", "end_intercept",
        "end_trait_effect_patient", "end_change_effect", "end_trait_effect_therapist",
        "end_sd", "sd_end_therapist",
    ]  # fmt: skip
    got, v = potential_at_random_point(model, names, seed=2, scale=0.3)
    n_d, n_b = 2, data.k + 1
    corr = np.eye(n_d + n_b)
    corr[:n_d, :n_d], corr[n_d:, n_d:] = v["corr_paths"], v["corr_patient"]
    corr[:n_d, n_d:] = v["corr_paths_patient"]
    corr[n_d:, :n_d] = v["corr_paths_patient"].T
    sd = np.concatenate([v["sd_paths"], v["sd_patient"]])
    joint = sd[:, None] * corr * sd[None, :]
    dev = v["path_deviation"]
    # the deviations have the joint's marginal covariance (offsets through its Cholesky block)
    np.testing.assert_allclose(
        dev, v["path_offset"] @ np.linalg.cholesky(joint[:n_d, :n_d]).T, rtol=1e-9, atol=1e-12
    )
    mean_b, cov_b = _condition(joint, n_d, dev)
    chol_b, mean_draw = patient_level(v, dev)  # what leave-one-out and the PPC rebuild
    assert mean_draw is not None
    np.testing.assert_allclose(mean_draw, mean_b, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(chol_b @ chol_b.T, cov_b, rtol=1e-8, atol=1e-12)

    def cov(name):
        return cov_of(v, name)

    idx = {r: i for i, r in enumerate(data.roles)}
    phi = np.broadcast_to(v["lag"], (data.n_patients, 3, 3)).copy()
    for r, (to, source) in enumerate(spec.random_paths or ()):
        phi[:, idx[to], idx[source]] += dev[:, r]
    params = IntegratedParams(
        v["intercept"], phi, cov("innovation"), cov("first"), np.linalg.cholesky(cov_b),
        v["trend"], None, np.linalg.cholesky(cov("therapist")),
        EndParams(v["end_intercept"], v["end_trait_effect_patient"], v["end_change_effect"],
                  v["end_trait_effect_therapist"], v["end_sd"], v["sd_end_therapist"]),
        patient_mean=mean_b,
    )  # fmt: skip
    grid = MechanismGrid.of(data)
    want, _ = marginal_logp(data, filter_inputs(data, grid, True), grid.filled, grid.time, params)
    assert float(got) == pytest.approx(float(np.sum(want)), rel=1e-10)
    # and the same through the pytensor graph of the numpy parameters
    want_t, _ = marginal_logp(data, filter_inputs(data, grid, True), grid.filled, grid.time,
                              params, pt)  # fmt: skip
    assert float(pt.sum(want_t).eval()) == pytest.approx(float(np.sum(want)), rel=1e-10)


def test_the_covariance_needs_random_lags_and_integrated_traits():
    data = _design("two_series", 0, False)
    with pytest.raises(ValueError, match="needs random lags"):
        MechanismSpec(lag_trait_covariance=True).resolved(data)
    ok = MechanismSpec(lag_trait_covariance=True, random_paths=(("outcome", "predictor"),))
    assert ok.resolved(data).lag_trait_covariance
    again = MechanismSpec.from_dict(ok.resolved(data).to_dict())
    assert again.lag_trait_covariance
    # files written before the option read without it
    old = ok.resolved(data).to_dict()
    del old["lag_trait_covariance"]
    assert not MechanismSpec.from_dict(old).lag_trait_covariance


def test_a_patients_own_deviation_leaves_its_therapists_out():
    # paths (a, b); b also varies between therapists: d_i = whole - c_j on b only
    from types import SimpleNamespace

    from bayes_alliance.mechanisms.patient_density import own_deviation

    data = SimpleNamespace(patient_therapist=np.array([0, 1, 1]))
    spec = MechanismSpec(
        random_paths=(("mediator", "predictor"), ("outcome", "mediator")),
        therapist_paths=(("outcome", "mediator"),),
    )
    draw = {
        "path_deviation": np.array([[0.1, 0.5], [0.2, -0.3], [0.3, 0.0]]),
        "path_deviation_therapist": np.array([[0.4], [-0.1]]),
    }
    got = own_deviation(draw, data, spec)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, [[0.1, 0.1], [0.2, -0.2], [0.3, 0.1]])
    assert own_deviation({}, data, spec) is None  # type: ignore[arg-type]
