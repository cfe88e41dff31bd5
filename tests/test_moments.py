"""Moments and R-squared kernels on hand-computed inputs; the k x k stationary covariance
against scipy's discrete Lyapunov solver, the truncated series and a simulated series, and the
entry-wise 2x2 closed form against it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from bayes_alliance.kernels import dynamics, moments, r2


def _stationary_inputs(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """n random lag matrices with spectral radius in (0.05, 0.95) and covariances (n, k, k)."""
    phi = rng.normal(size=(n, k, k))
    radius = np.abs(np.linalg.eigvals(phi)).max(axis=-1)
    phi *= (rng.uniform(0.05, 0.95, n) / radius)[:, None, None]
    chol = rng.normal(size=(n, k, k))
    sigma = chol @ np.swapaxes(chol, -1, -2) + 0.1 * np.eye(k)
    return phi, sigma


@pytest.mark.parametrize("k", [2, 3, 4])
def test_stationary_cov_k_by_k_matches_scipy_and_the_series(k: int) -> None:
    """Truth 1: scipy.linalg.solve_discrete_lyapunov (Bartels-Stewart), one matrix at a time.
    Truth 2: the series S = sum_j Phi^j Sigma Phi^j', truncated where Phi^j is negligible."""
    rng = np.random.default_rng(k)
    phi, sigma = _stationary_inputs(rng, 40, k)
    s = moments.stationary_cov(phi.reshape(4, 10, k, k), sigma.reshape(4, 10, k, k))
    s = s.reshape(40, k, k)
    want = np.stack([linalg.solve_discrete_lyapunov(a, q) for a, q in zip(phi, sigma, strict=True)])
    np.testing.assert_allclose(s, want, rtol=1e-8, atol=1e-10)
    series, power = np.zeros_like(sigma), np.broadcast_to(np.eye(k), phi.shape)
    for _ in range(800):  # radius <= 0.95: 0.95^1600 < 1e-35
        series = series + power @ sigma @ np.swapaxes(power, -1, -2)
        power = phi @ power
    np.testing.assert_allclose(s, series, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(s, np.swapaxes(s, -1, -2))


def test_stationary_cov_matches_simulated_series() -> None:
    """Truth: the sample covariance of long simulated VAR(1) series (k = 3)."""
    lag = np.array([[0.5, 0.1, 0.0], [0.2, 0.3, 0.0], [-0.2, -0.3, 0.4]])
    sig = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.1], [0.0, 0.1, 0.5]])
    rng = np.random.default_rng(2)
    w = np.zeros((20_000, 3))
    chol = np.linalg.cholesky(sig)
    for _ in range(60):
        w = w @ lag.T + rng.standard_normal(w.shape) @ chol.T
    np.testing.assert_allclose(moments.stationary_cov(lag, sig), np.cov(w.T), atol=0.05)


def test_stationary_cov_nan_where_not_stationary_and_broadcast() -> None:
    """A unit root (a singular system) and an explosive root give NaN, not an error; one
    Sigma broadcasts against a batch of lag matrices."""
    sig = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.1], [0.0, 0.1, 0.5]])
    lag = np.stack([np.eye(3), np.eye(3) * 1.1, np.eye(3) * 0.5])
    s = moments.stationary_cov(lag, sig)
    assert np.isnan(s[:2]).all()
    np.testing.assert_allclose(s[2], sig / 0.75)  # diagonal Phi = 0.5 I: S = Sigma / (1 - 0.25)


def test_entrywise_closed_form_matches_the_k_by_k_kernel() -> None:
    """The 2x2 entry-wise closed form (Cramer's rule, used by the models' graphs) against the
    k x k linear system on random stationary inputs."""
    phi, sigma = _stationary_inputs(np.random.default_rng(7), 500, 2)
    entries = (phi[:, 0, 0], phi[:, 0, 1], phi[:, 1, 0], phi[:, 1, 1])
    s11, s12, s22 = dynamics.stationary_cov(
        entries, (sigma[:, 0, 0], sigma[:, 0, 1], sigma[:, 1, 1])
    )
    want = moments.stationary_cov(phi, sigma)
    np.testing.assert_allclose(
        np.stack([s11, s12, s22], -1), want[:, [0, 0, 1], [0, 1, 1]], rtol=1e-9
    )


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
