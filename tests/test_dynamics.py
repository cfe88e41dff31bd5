"""The dynamics kernel against dense matrix algebra, eigenvalues and iterated equations."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayes_alliance.kernels import dynamics
from tests import dense

DIRECTIONS = list(dynamics.SAME_SESSION)


def _structural(rng):
    a, b, c, d = rng.uniform(-0.6, 0.6, 4)
    sx, sy = rng.uniform(0.3, 1.0, 2)
    r = rng.uniform(-0.6, 0.6)
    return np.array([[a, b], [c, d]]), np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])


@pytest.mark.parametrize("same_session", DIRECTIONS)
def test_reduced_form_and_stationary_cov_match_dense(same_session):
    rng = np.random.default_rng(1)
    for _ in range(50):
        phi, sig = _structural(rng)
        if same_session != "none":
            sig[0, 1] = sig[1, 0] = 0.0
        b0 = rng.uniform(-0.5, 0.5)
        ph_e, sg_e = dynamics.reduced_form(
            tuple(phi.ravel()), (sig[0, 0], sig[0, 1], sig[1, 1]), b0, same_session
        )
        ph_d, sg_d = dense.reduced(phi, sig, b0, same_session)
        np.testing.assert_allclose(ph_e, ph_d.ravel(), atol=1e-12)
        np.testing.assert_allclose(sg_e, sg_d[[0, 0, 1], [0, 1, 1]], atol=1e-12)
        if np.abs(np.linalg.eigvals(ph_d)).max() < 1:
            s = dynamics.stationary_cov(ph_e, sg_e)
            np.testing.assert_allclose(s, dense.stationary(ph_d, sg_d)[[0, 0, 1], [0, 1, 1]])


def test_stationarity_margins_agree_with_eigenvalues():
    rng = np.random.default_rng(2)
    phi = rng.uniform(-1.3, 1.3, size=(2000, 2, 2))
    ours = dynamics.is_stationary((phi[:, 0, 0], phi[:, 0, 1], phi[:, 1, 0], phi[:, 1, 1]))
    assert (ours == (np.abs(np.linalg.eigvals(phi)).max(axis=1) < 1)).all()
    assert 0.2 < ours.mean() < 0.8  # both kinds are present


@pytest.mark.parametrize("same_session", DIRECTIONS)
def test_slope_interval_is_the_stationary_set(same_session):
    rng = np.random.default_rng(3)
    grid = np.linspace(-20, 20, 40_001)
    for trial in range(60):
        a, b, d, b0 = rng.uniform(-1.1, 1.1, 4)
        if trial % 6 == 0:
            b = 0.0
        lo, hi, ok = dynamics.slope_interval(a, b, d, b0, same_session)
        phis = np.zeros((grid.size, 2, 2))
        phis[:, 0, 0], phis[:, 0, 1], phis[:, 1, 0], phis[:, 1, 1] = a, b, grid, d
        red = np.stack([dense.reduced(p, np.eye(2), b0, same_session)[0] for p in phis[::50]])
        stationary = np.abs(np.linalg.eigvals(red)).max(axis=1) < 1
        inside = ok & (grid[::50] > lo) & (grid[::50] < hi)
        assert (inside == stationary).all(), (a, b, d, b0, lo, hi, ok)


@pytest.mark.parametrize("same_session", DIRECTIONS)
def test_long_run_is_the_response_to_a_sustained_shift(same_session):
    """Iterate the structural equations with a sustained unit shift in one variable's
    innovation until they settle; the settled states are a column of (B0 - Phi)^-1."""
    phi = np.array([[0.3, -0.15], [-0.25, 0.4]])
    b0 = 0.35
    lr = dynamics.long_run(tuple(phi.ravel()), b0, same_session)
    for shifted in (0, 1):
        w = np.zeros(2)
        for _ in range(400):
            e = np.eye(2)[shifted]
            if same_session == "outcome_to_predictor":
                y = phi[1] @ w + e[1]
                x = phi[0] @ w + b0 * y + e[0]
            else:
                x = phi[0] @ w + e[0]
                y = phi[1] @ w + e[1] + (b0 * x if same_session == "predictor_to_outcome" else 0.0)
            w = np.array([x, y])
        np.testing.assert_allclose(w, np.array(lr).reshape(2, 2)[:, shifted], rtol=1e-10)


@pytest.mark.parametrize("same_session", DIRECTIONS)
def test_long_run_per_unit_of_sustained_predictor(same_session):
    """Per unit of sustained change in x, y moves by (c + b0) / (1 - d) (b0 only for x -> y),
    whatever the autoregression of x and the reverse path: the ratio of the yx and xx entries."""
    a, b, c, d, b0 = 0.5, -0.2, 0.3, 0.5, 0.2
    lr = dynamics.long_run((a, b, c, d), b0, same_session)
    lag0 = b0 if same_session == "predictor_to_outcome" else 0.0
    assert lr[2] / lr[0] == pytest.approx((c + lag0) / (1 - d))
    assert lr[2] != pytest.approx((c + lag0) / (1 - d))  # the shift also moves x itself


def test_kernel_runs_on_pytensor_with_the_same_numbers():
    rng = np.random.default_rng(4)
    phi, sig = _structural(rng)
    syms = [pt.scalar(n) for n in "abcd"]
    out = dynamics.stationary_cov(tuple(syms), (sig[0, 0], sig[0, 1], sig[1, 1]))
    lo, hi, ok = dynamics.slope_interval(
        syms[0], syms[1], syms[3], 0.2, "outcome_to_predictor", xp=pt
    )
    fn = pytensor.function(syms, [*out, lo, hi, ok])
    got = fn(*phi.ravel())
    want = dynamics.stationary_cov(tuple(phi.ravel()), (sig[0, 0], sig[0, 1], sig[1, 1]))
    np.testing.assert_allclose(got[:3], want)
    ref = dynamics.slope_interval(phi[0, 0], phi[0, 1], phi[1, 1], 0.2, "outcome_to_predictor")
    np.testing.assert_allclose(got[3:5], ref[:2])
    assert bool(got[5]) == bool(ref[2])
