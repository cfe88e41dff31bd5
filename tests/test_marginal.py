"""Closed-form integration of the latent means against dense Gaussian conditioning."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_alliance.kernels import marginal, moments


def _series(rng, n, phi, sigma, first):
    z = np.empty((n, 2))
    z[0] = rng.multivariate_normal(np.zeros(2), first)
    for t in range(1, n):
        z[t] = phi @ z[t - 1] + rng.multivariate_normal(np.zeros(2), sigma)
    return z


def _dense(n, phi, sigma, first):
    var = [first]
    for _ in range(1, n):
        var.append(phi @ var[-1] @ phi.T + sigma)
    cov = np.zeros((2 * n, 2 * n))
    for t in range(n):
        for s in range(t + 1):
            block = np.linalg.matrix_power(phi, t - s) @ var[s]
            cov[2 * t : 2 * t + 2, 2 * s : 2 * s + 2] = block
            cov[2 * s : 2 * s + 2, 2 * t : 2 * t + 2] = block.T
    return cov


def _sums(z, phi, sigma):
    r = z[1:] - z[:-1] @ phi.T
    q = marginal.residual_quadratic(r[:, 0], r[:, 1], sigma[0, 0], sigma[0, 1], sigma[1, 1])
    return marginal.SeriesSums.constant(
        (z[0, 0], z[0, 1]),
        (r[:, 0].sum(), r[:, 1].sum()),
        q.sum(),
        len(z) - 1,
        (sigma[0, 0], sigma[0, 1], sigma[1, 1]),
    )


@pytest.mark.parametrize("n", [1, 2, 7])
def test_integrated_loglik_and_mean_posterior_match_dense_conditioning(n):
    rng = np.random.default_rng(n)
    phi = np.array([[0.3, -0.1], [-0.25, 0.4]])
    sigma = moments.innovation_cov(0.5, 0.4, -0.3)
    first = moments.stationary_cov(phi, sigma)
    tau = np.array([[0.8, -0.2], [-0.2, 0.5]])
    m0 = np.array([0.3, -0.4])
    mean = rng.multivariate_normal(m0, tau)
    z = _series(rng, n, phi, sigma, first) + mean
    sums = _sums(z, phi, sigma)
    ent = (phi[0, 0], phi[0, 1], phi[1, 0], phi[1, 1])
    fst = (first[0, 0], first[0, 1], first[1, 1])
    tau_e = (tau[0, 0], tau[0, 1], tau[1, 1])

    # Dense reference: z = 1 (x) M + w, M ~ N(m0, tau).
    ones = np.kron(np.ones((n, 1)), np.eye(2))
    cov_z = _dense(n, phi, sigma, first) + ones @ tau @ ones.T
    ll = stats.multivariate_normal(ones @ m0, cov_z).logpdf(z.ravel())
    ours = marginal.integrated_loglik(sums, ent, fst, tuple(m0), tau_e)
    assert ours == pytest.approx(ll, rel=1e-10)

    c_mz = tau @ ones.T
    gain = c_mz @ np.linalg.inv(cov_z)
    post_mean = m0 + gain @ (z.ravel() - ones @ m0)
    post_cov = tau - gain @ c_mz.T
    mx, my, c11, c12, c22 = marginal.mean_posterior(sums, ent, fst, tuple(m0), tau_e)
    np.testing.assert_allclose([mx, my], post_mean, rtol=1e-10)
    np.testing.assert_allclose([c11, c12, c22], post_cov[[0, 0, 1], [0, 1, 1]], rtol=1e-10)


def test_integrated_loglik_stays_finite_as_the_patient_sd_vanishes():
    rng = np.random.default_rng(0)
    phi = np.array([[0.3, 0.0], [-0.2, 0.4]])
    sigma = np.diag([0.25, 0.16])
    first = moments.stationary_cov(phi, sigma)
    z = _series(rng, 5, phi, sigma, first)
    sums = _sums(z, phi, sigma)
    args = ((0.3, 0.0, -0.2, 0.4), tuple(first[[0, 0, 1], [0, 1, 1]]), (0, 0))
    at_zero = marginal.integrated_loglik(sums, *args, (0.0, 0.0, 0.0))
    tiny = marginal.integrated_loglik(sums, *args, (1e-12, 0.0, 1e-12))
    ref = stats.multivariate_normal(np.zeros(10), _dense(5, phi, sigma, first)).logpdf(z.ravel())
    assert np.isfinite(at_zero)
    assert at_zero == pytest.approx(ref, rel=1e-10)
    assert tiny == pytest.approx(ref, rel=1e-8)


def test_session_specific_innovations_match_dense_conditioning():
    """One innovation covariance per transition (RI-CLPM): the precision-weighted sums give the
    dense Gaussian density with the latent mean integrated out."""
    rng = np.random.default_rng(4)
    n = 5
    phi = np.array([[0.3, -0.1], [-0.25, 0.4]])
    sigmas = [moments.innovation_cov(sx, sy, r) for sx, sy, r in rng.uniform(0.2, 0.9, (n - 1, 3))]
    first = moments.innovation_cov(0.7, 0.5, 0.3)
    tau = np.array([[0.6, 0.1], [0.1, 0.4]])
    m0 = np.array([0.2, -0.1])
    var = [first]
    for s in sigmas:
        var.append(phi @ var[-1] @ phi.T + s)
    cov = np.zeros((2 * n, 2 * n))
    for t in range(n):
        for u in range(t + 1):
            block = np.linalg.matrix_power(phi, t - u) @ var[u]
            cov[2 * t : 2 * t + 2, 2 * u : 2 * u + 2] = block
            cov[2 * u : 2 * u + 2, 2 * t : 2 * t + 2] = block.T
    ones = np.kron(np.ones((n, 1)), np.eye(2))
    z = rng.multivariate_normal(ones @ m0, cov + ones @ tau @ ones.T).reshape(n, 2)
    r = z[1:] - z[:-1] @ phi.T
    prec = [np.linalg.inv(s) for s in sigmas]
    h = sum(p @ rt for p, rt in zip(prec, r, strict=True))
    p_sum = sum(prec)
    sums = marginal.SeriesSums(
        first_x=z[0, 0],
        first_y=z[0, 1],
        hx=h[0],
        hy=h[1],
        p11=p_sum[0, 0],
        p12=p_sum[0, 1],
        p22=p_sum[1, 1],
        q=sum(rt @ p @ rt for p, rt in zip(prec, r, strict=True)),
        logdet=sum(np.linalg.slogdet(s)[1] for s in sigmas),
        n_trans=n - 1,
    )
    ent = (phi[0, 0], phi[0, 1], phi[1, 0], phi[1, 1])
    fst = (first[0, 0], first[0, 1], first[1, 1])
    ours = marginal.integrated_loglik(sums, ent, fst, tuple(m0), (tau[0, 0], tau[0, 1], tau[1, 1]))
    ref = stats.multivariate_normal(ones @ m0, cov + ones @ tau @ ones.T).logpdf(z.ravel())
    assert ours == pytest.approx(ref, rel=1e-10)


def test_draw_means_have_the_requested_moments():
    rng = np.random.default_rng(1)
    n = 200_000
    mom = (np.full(n, 0.5), np.full(n, -1.0), np.full(n, 0.4), np.full(n, -0.1), np.full(n, 0.2))
    mx, my = marginal.draw_means(mom, rng)
    assert mx.mean() == pytest.approx(0.5, abs=0.005)
    assert my.mean() == pytest.approx(-1.0, abs=0.005)
    cov = np.cov(mx, my)
    np.testing.assert_allclose(cov[[0, 0, 1], [0, 1, 1]], [0.4, -0.1, 0.2], atol=0.005)
