"""Moments and R-squared kernels on hand-computed inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.kernels import moments, r2


def test_stationary_cov_diagonal_case_by_hand():
    phi = moments.lag_matrix(0.5, 0.0, 0.0, -0.2)
    sigma = moments.innovation_cov(1.0, 2.0, 0.0)
    s = moments.stationary_cov(phi, sigma)
    np.testing.assert_allclose(s, [[1 / 0.75, 0], [0, 4 / 0.96]])


def test_stationary_cov_solves_the_lyapunov_equation_batched():
    rng = np.random.default_rng(1)
    phi = rng.uniform(-0.4, 0.4, size=(5, 3, 2, 2))
    sigma = moments.innovation_cov(rng.uniform(0.5, 1, (5, 3)), 1.0, rng.uniform(-0.5, 0.5, (5, 3)))
    s = moments.stationary_cov(phi, sigma)
    np.testing.assert_allclose(s, phi @ s @ np.swapaxes(phi, -1, -2) + sigma, atol=1e-12)


def test_nonstationary_gives_nan_and_radius():
    phi = moments.lag_matrix([0.5, 1.1], 0.0, 0.0, 0.2)
    assert moments.is_stationary(phi).tolist() == [True, False]
    assert np.isnan(moments.stationary_cov(phi, np.eye(2))[1]).all()
    rng = np.random.default_rng(2)
    many = rng.uniform(-1.2, 1.2, size=(200, 2, 2))
    np.testing.assert_allclose(
        moments.spectral_radius(many), np.abs(np.linalg.eigvals(many)).max(axis=-1), rtol=1e-10
    )


def test_long_run_single_equation_case():
    # With no feedback to x, the long-run effect of x on y is phi_yx / (1 - phi_yy).
    lr = moments.long_run_matrix(moments.lag_matrix(0.0, 0.0, -0.3, 0.4))
    assert lr[1, 0] == pytest.approx(-0.3 / 0.6)


def test_icc_shares_add_to_one():
    out = moments.icc({"therapist": 1.0, "patient": 3.0}, 4.0)
    assert out == {"therapist": 0.125, "patient": 0.375, "session": 0.5}


def test_two_level_components_by_hand():
    c = r2.two_level_components(
        gamma_w=np.array([2.0]),
        phi_w=np.array([[1.5]]),
        gamma_b=np.array([1.0, 0.5]),
        phi_b=np.array([[1.0, 0.2], [0.2, 2.0]]),
        tau=np.array([[0.8, 0.1], [0.1, 0.3]]),
        sigma_re=np.array([[0.0, 0.0], [0.0, 1.5]]),
        sigma2=2.0,
    )
    # f1 = 4 * 1.5; f2 = 1 + 2 * 0.5 * 0.2 + 0.25 * 2; v = 0.3 * 1.5; m = tau00
    assert {k: float(v) for k, v in c.items()} == pytest.approx(
        {"f1": 6.0, "f2": 1.7, "v": 0.45, "m": 0.8, "sigma2": 2.0}
    )
    m = r2.two_level_components(
        gamma_w=None,
        phi_w=None,
        gamma_b=None,
        phi_b=None,
        tau=np.array([[0.8, 0.1], [0.1, 0.3]]),
        sigma_re=None,
        sigma2=1.0,
        mean_re=np.array([1.0, 0.5]),
    )["m"]
    assert float(m) == pytest.approx(0.8 + 2 * 0.5 * 0.1 + 0.25 * 0.3)
    out = r2.two_level_r2(c)
    assert out[("total", "f1")] == pytest.approx(6 / 10.95)
    assert out[("total", "fvm")] == pytest.approx(8.95 / 10.95)
    assert out[("within", "f1v")] == pytest.approx(6.45 / 8.45)
    assert out[("between", "m")] == pytest.approx(0.8 / 2.5)
    assert out[("total", "sigma2")] == pytest.approx(2 / 10.95)
    assert out[("within", "sigma2")] == pytest.approx(2 / 8.45)


def test_three_level_components_by_hand():
    c = r2.three_level_components(
        gamma1=np.array([0.5, 0.3]),
        phi1=np.array([[2.0, 0.5], [0.5, 1.0]]),
        gamma2=np.array([1.0]),
        phi2=np.array([[0.5]]),
        gamma3=np.array([2.0]),
        phi3=np.array([[0.1]]),
        tau2_slopes=np.array([[0.04]]),
        sigma1_slopes=np.array([[2.0]]),
        tau3_slopes1=np.array([[0.01]]),
        tau3_slopes2=np.array([[0.2]]),
        sigma2_slopes=np.array([[0.5]]),
        m2=0.6,
        m3=0.3,
        sigma2=1.0,
    )
    expected = {
        "f1": 0.74,
        "f2": 0.5,
        "f3": 0.4,
        "v12": 0.08,
        "v13": 0.02,
        "v23": 0.1,
        "m2": 0.6,
        "m3": 0.3,
        "sigma2": 1.0,
    }
    assert {k: float(v) for k, v in c.items()} == pytest.approx(expected)
    assert float(r2.total_variance(c)) == pytest.approx(3.74)
    out = r2.three_level_r2(c)
    assert out[("level1", "f1")] == pytest.approx(0.74 / 1.84)
    assert out[("level2", "v23")] == pytest.approx(0.1 / 1.2)
    assert out[("level3", "m3")] == pytest.approx(0.3 / 0.7)
    assert out[("total", "fvm")] == pytest.approx(2.74 / 3.74)
    assert out[("total", "sigma2")] == pytest.approx(1 / 3.74)
    assert out[("level1", "sigma2")] == pytest.approx(1 / 1.84)


def test_components_are_batched_over_draws():
    g = np.array([[0.5, 0.3], [1.0, 0.0]])  # two draws
    c = r2.two_level_components(
        gamma_w=g,
        phi_w=np.eye(2),
        gamma_b=None,
        phi_b=None,
        tau=np.full((2, 1, 1), 0.5),
        sigma_re=None,
        sigma2=np.array([1.0, 2.0]),
    )
    np.testing.assert_allclose(c["f1"], [0.34, 1.0])
    np.testing.assert_allclose(r2.two_level_r2(c)[("total", "f1")], [0.34 / 1.84, 1.0 / 3.5])
