"""The dense k-series reference (tests/dense_k.py) against the truth it must carry: Monte Carlo
draws from the generative recursion (moments and the linear regression of latents on data) and
hand-written 2 x 2 Gaussians.

Monte Carlo tolerance: with N independent draws the empirical mean of entry a has standard error
sqrt(V_aa / N) and, for a Gaussian vector, the empirical covariance of (a, b) has standard error
sqrt((V_aa V_bb + V_ab^2) / N) (Isserlis). Each entry's error divided by its standard error is
about N(0, 1); the largest of the <= ~1,000 entries of a design exceeds 5 with probability
< 1e-3 by the Bonferroni bound (and the seeds are fixed), while a relative error of 5% in one
covariance entry already gives z ~ 0.05 sqrt(N) = 10 at N = 40,000. ``test_mc_check_has_power``
shows that wrong models are rejected by the same check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.dense_k import (
    EndOutcome,
    dense_joint,
    dense_logp,
    dense_posterior,
    simulate_k,
    stack_observed,
)

Z_MAX = 5.0


def _spd(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return scale * (a @ a.T / n + 0.5 * np.eye(n))


def _stable(rng: np.random.Generator, p: int, k: int) -> np.ndarray:
    """(P, k, k) asymmetric lag matrices with spectral radius 0.6."""
    out = np.empty((p, k, k))
    for i in range(p):
        a = rng.normal(size=(k, k))
        out[i] = 0.6 * a / max(abs(np.linalg.eigvals(a)))
    return out


def _design(seed: int, k: int, p: int, s: int, levels: int, trend: bool, end: bool) -> dict:
    """A small design with unequal first/last columns, a few missing cells, nonzero measurement
    error on the last series only, and (optionally) therapists, a trend and an end outcome."""
    rng = np.random.default_rng(seed)
    first = np.array([i % 2 for i in range(p)])
    last = np.array([s - 1 - (i % 3 == 1) for i in range(p)])
    observed = np.zeros((p, s, k), dtype=bool)
    for i in range(p):
        observed[i, first[i] : last[i] + 1] = True
    # Holes: a whole session of one patient and single entries of others.
    observed[0, first[0] + 1] = False
    observed[p - 1, last[p - 1] - 1, 0] = False
    if k > 1:
        observed[1, last[1], k - 1] = False
    cols = np.arange(s)
    time = np.stack([cols - 0.5 * (first[i] + last[i]) for i in range(p)]).astype(float)
    omega = np.zeros(k)
    omega[-1] = 0.5
    sigma_p = _spd(rng, k + int(trend), 0.8)
    if trend:
        sigma_p[k, :] *= 0.3  # the slope varies less than the levels
        sigma_p[:, k] *= 0.3
    spec: dict[str, Any] = dict(
        first=first,
        last=last,
        time=time,
        mu=rng.normal(size=k),
        phi=_stable(rng, p, k),
        sigma=np.stack([_spd(rng, k, 0.5) for _ in range(p)]),
        first_cov=_spd(rng, k),
        sigma_p=sigma_p,
        omega=omega,
        trend=0.3 if trend else 0.0,
    )
    if levels == 3:
        spec["therapist"] = np.arange(p) % 2
        spec["sigma_t"] = _spd(rng, k, 0.6)
    end_observed = None
    if end:
        end_observed = np.arange(p) != 1
        spec["end"] = EndOutcome(
            O=np.where(end_observed, 0.0, np.nan),
            g0=1.0,
            gP=0.8,
            sdO=0.7,
            gT=-0.5 if levels == 3 else 0.0,
            gS=0.6 if trend else 0.0,
            tauO=0.4 if levels == 3 else 0.0,
        )
    return dict(spec=spec, observed=observed, end_observed=end_observed)


def _simulated_vectors(design: dict, n: int, seed: int):
    sims = simulate_k(np.random.default_rng(seed), n, **design["spec"])
    y = stack_observed(sims.values, design["observed"], sims.end, design["end_observed"])
    return sims, y


def _max_z(y: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """Largest |z| of the empirical mean and of the empirical covariance entries."""
    n = y.shape[0]
    z_mean = (y.mean(axis=0) - mean) / np.sqrt(np.diag(cov) / n)
    emp = np.cov(y, rowvar=False)
    var = np.diag(cov)
    se = np.sqrt((np.outer(var, var) + cov**2) / n)
    z_cov = (emp - cov) / se
    return float(np.abs(z_mean).max()), float(np.abs(z_cov).max())


def _joint(design: dict, **override):
    spec = {**design["spec"], **override}
    values = np.zeros(design["observed"].shape)
    return dense_joint(values, design["observed"], **spec)


BIG: dict[str, Any] = dict(seed=1, k=3, p=4, s=5, levels=3, trend=True, end=True)


@pytest.fixture(scope="module")
def big():
    design = _design(**BIG)
    _, y = _simulated_vectors(design, 40_000, seed=11)
    return design, y


def test_joint_moments_k3_match_simulation(big):
    design, y = big
    mean, cov, index = _joint(design)
    n_cells = int(design["observed"].sum())
    assert y.shape[1] == len(mean) == n_cells + int(design["end_observed"].sum())
    # The index names the cells in the order of values[observed], then the end rows.
    np.testing.assert_array_equal(index[:n_cells], np.argwhere(design["observed"]))
    np.testing.assert_array_equal(index[n_cells:, 0], np.flatnonzero(design["end_observed"]))
    assert np.all(index[n_cells:, 1:] == -1)
    z_mean, z_cov = _max_z(y, mean, cov)
    assert z_mean < Z_MAX and z_cov < Z_MAX, (z_mean, z_cov)


def test_mc_check_has_power(big):
    """The same check rejects models that are wrong in one part only."""
    design, y = big
    spec = design["spec"]
    wrong = {
        "phi transposed": dict(phi=np.transpose(spec["phi"], (0, 2, 1))),
        "no therapists": dict(therapist=None, sigma_t=None),
        "trend variance off": dict(sigma_p=spec["sigma_p"] * np.r_[1, 1, 1, 0][:, None]),
        "measurement error on series 0": dict(omega=spec["omega"][::-1]),
        "first state Var(w) = 1.2 F": dict(first_cov=1.2 * spec["first_cov"]),
        "end loading gT = 0": dict(end=EndOutcome(**{**spec["end"].__dict__, "gT": 0.0})),
        "fixed trend 0": dict(trend=0.0),
    }
    for name, override in wrong.items():
        mean, cov, _ = _joint(design, **override)
        assert max(_max_z(y, mean, cov)) > 2 * Z_MAX, name


@pytest.mark.parametrize(
    "k, levels, trend, end",
    [(1, 2, False, True), (1, 3, True, False), (2, 2, True, True), (2, 3, False, True)],
)
def test_joint_moments_small_k_match_simulation(k, levels, trend, end):
    design = _design(seed=10 * k + levels, k=k, p=3, s=4, levels=levels, trend=trend, end=end)
    _, y = _simulated_vectors(design, 20_000, seed=k + levels)
    mean, cov, _ = _joint(design)
    z_mean, z_cov = _max_z(y, mean, cov)
    assert z_mean < Z_MAX and z_cov < Z_MAX, (z_mean, z_cov)


def test_posterior_matches_regression_of_latents_on_data():
    """E(latents | y) is linear in y and Var(latents | y) is constant, so the OLS of the
    simulated latents on (1, y) estimates the conditional mean at any y, and its residual
    covariance the conditional covariance."""
    design = _design(seed=5, k=2, p=3, s=4, levels=3, trend=True, end=True)
    n = 40_000
    sims, y = _simulated_vectors(design, n, seed=6)
    theta = sims.latents()
    x = np.column_stack([np.ones(n), y])
    coef, *_ = np.linalg.lstsq(x, theta, rcond=None)
    resid = theta - x @ coef
    dof = n - x.shape[1]
    resid_cov = resid.T @ resid / dof

    # Fresh data sets, not used by the regression, given to dense_posterior as data.
    fresh, y_new = _simulated_vectors(design, 3, seed=7)
    xtx_inv = np.linalg.inv(x.T @ x)
    spec = design["spec"]

    def posterior(b: int, **override):
        end_o = np.where(design["end_observed"], fresh.end[b], np.nan)
        end = EndOutcome(**{**spec["end"].__dict__, "O": end_o})
        return dense_posterior(
            fresh.values[b], design["observed"], **{**spec, **override, "end": end}
        )

    for b in range(3):
        post = posterior(b)
        x0 = np.r_[1.0, y_new[b]]
        se = np.sqrt(np.diag(resid_cov) * (x0 @ xtx_inv @ x0))
        z = (x0 @ coef - post.joint_mean) / se
        assert np.abs(z).max() < Z_MAX, z
        # Power: the posterior of a model with the lags transposed is rejected at the same y.
        wrong = posterior(b, phi=np.transpose(spec["phi"], (0, 2, 1)))
        assert np.abs((x0 @ coef - wrong.joint_mean) / se).max() > 2 * Z_MAX
        # The per-block views are slices of the joint moments.
        q_p = post.patient_mean.size
        np.testing.assert_array_equal(post.patient_mean.ravel(), post.joint_mean[:q_p])
        assert post.therapist_mean is not None and post.end_mean is not None
        np.testing.assert_array_equal(post.therapist_mean.ravel(), post.joint_mean[q_p : q_p + 4])
        np.testing.assert_array_equal(post.end_mean, post.joint_mean[q_p + 4 :])

    var = np.diag(post.joint_cov)
    se = np.sqrt((np.outer(var, var) + post.joint_cov**2) / dof)
    z_cov = (resid_cov - post.joint_cov) / se
    assert np.abs(z_cov).max() < Z_MAX, np.abs(z_cov).max()
    assert post.patient_cov.shape == (3, 3, 3)
    assert post.therapist_cov is not None and post.therapist_cov.shape == (2, 2, 2)
    np.testing.assert_allclose(post.patient_cov[1], post.joint_cov[3:6, 3:6])


def _logpdf_2x2(y0, y1, m0, m1, v00, v11, v01) -> float:
    det = v00 * v11 - v01**2
    a, b = y0 - m0, y1 - m1
    quad = (v11 * a * a - 2 * v01 * a * b + v00 * b * b) / det
    return -math.log(2 * math.pi) - 0.5 * math.log(det) - 0.5 * quad


def test_logp_one_patient_two_sessions_by_hand():
    """k = 1, two sessions, trend: z_t = mu + v + (beta + delta) tau_t + w_t + eps_t with
    Var w_0 = F, Var w_1 = phi^2 F + sigma, Cov(w_1, w_0) = phi F."""
    mu, beta, phi, sig, f, om = 2.0, 0.4, 0.6, 0.5, 1.2, 0.3
    a, c, d = 0.9, 0.2, 0.25  # Var v, Cov(v, delta), Var delta
    tau = np.array([[-0.5, 0.5]])
    v00 = a + 2 * c * (-0.5) + d * 0.25 + f + om**2
    v11 = a + 2 * c * 0.5 + d * 0.25 + phi**2 * f + sig + om**2
    v01 = a + c * 0.0 + d * (-0.25) + phi * f
    values = np.array([[[1.3], [2.9]]])
    args = dict(
        first=[0],
        last=[1],
        time=tau,
        mu=[mu],
        phi=[[phi]],
        sigma=[[sig]],
        first_cov=[[f]],
        sigma_p=[[a, c], [c, d]],
        omega=[om],
        trend=beta,
    )
    observed = np.ones((1, 2, 1), dtype=bool)
    mean, cov, _ = dense_joint(values, observed, **args)
    np.testing.assert_allclose(mean, [mu - 0.5 * beta, mu + 0.5 * beta])
    np.testing.assert_allclose(cov, [[v00, v01], [v01, v11]])
    hand = _logpdf_2x2(1.3, 2.9, mu - 0.5 * beta, mu + 0.5 * beta, v00, v11, v01)
    assert dense_logp(values, observed, **args) == pytest.approx(hand, rel=1e-12)


def test_logp_one_session_and_end_outcome_by_hand():
    """k = 1, one session, one therapist: z = mu + u + v + w + eps and
    O = g0 + uO + gT u + gP v + eta."""
    a, st, f, om = 0.9, 0.4, 1.1, 0.2
    g0, gp, gt, sdo, tauo = -1.0, 0.7, 1.5, 0.6, 0.5
    v00 = st + a + f + om**2
    v11 = tauo**2 + gt**2 * st + gp**2 * a + sdo**2
    v01 = gt * st + gp * a
    end = dict(O=np.array([0.4]), g0=g0, gP=gp, gT=gt, gS=9.9, sdO=sdo, tauO=tauo)
    args = dict(
        first=[0],
        last=[0],
        time=[[0.0]],
        mu=[0.5],
        phi=[[0.3]],
        sigma=[[1.0]],
        first_cov=[[f]],
        sigma_p=[[a]],
        omega=[om],
        therapist=np.array([0]),
        sigma_t=[[st]],
        end=end,
    )
    values = np.array([[[1.7]]])
    observed = np.ones((1, 1, 1), dtype=bool)
    _, cov, index = dense_joint(values, observed, **args)
    np.testing.assert_allclose(cov, [[v00, v01], [v01, v11]])
    np.testing.assert_array_equal(index, [[0, 0, 0], [0, -1, -1]])
    hand = _logpdf_2x2(1.7, 0.4, 0.5, g0, v00, v11, v01)
    assert dense_logp(values, observed, **args) == pytest.approx(hand, rel=1e-12)


def test_bad_input_names_the_cell():
    design = _design(seed=3, k=2, p=3, s=4, levels=2, trend=False, end=False)
    spec, observed = design["spec"], design["observed"].copy()
    values = np.zeros(observed.shape)
    outside = observed.copy()
    outside[1, 0, 1] = True  # patient 1 starts at column 1
    with pytest.raises(ValueError, match=r"patient 1, column 0, series 1: observed outside"):
        dense_joint(values, outside, **spec)
    values[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"patient 2, column 1, series 0: observed but not"):
        dense_logp(values, observed, **spec)
    with pytest.raises(ValueError, match=r"patient 0: therapist code -1"):
        dense_joint(
            np.zeros(observed.shape), observed, **spec, therapist=np.array([-1, 0, 0]),
            sigma_t=np.eye(2),
        )  # fmt: skip
