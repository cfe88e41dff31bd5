"""Exact checks of the mechanism models' derived effects on hand-computed inputs, and Monte
Carlo checks of the expectations over random paths (truth from simulated patients, not from
the formulas)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance.kernels import moments
from bayes_alliance.mechanisms import effects as me


def test_cov_and_trait_regression_by_hand() -> None:
    cov = me.cov_matrix(np.array([1.0, 2.0]), np.array([[1.0, 0.5], [0.5, 1.0]]))
    np.testing.assert_allclose(cov, [[1.0, 1.0], [1.0, 4.0]])
    # y on x alone: cov / var = 1.
    np.testing.assert_allclose(me.trait_regression(cov), [1.0])
    # Two predictors with covariance [[1, .5], [.5, 1]] and cov with y (.7, .2):
    # solve -> ((.7 - .5 * .2) / .75, (.2 - .5 * .7) / .75) = (.8, -.2).
    c3 = np.array([[1.0, 0.5, 0.7], [0.5, 1.0, 0.2], [0.7, 0.2, 2.0]])
    np.testing.assert_allclose(me.trait_regression(c3), [0.8, -0.2])


def test_trait_regression_recovers_a_generating_regression() -> None:
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal([0, 0], [[1.0, 0.4], [0.4, 2.0]], size=400_000)
    y = x @ np.array([-0.3, 0.25]) + rng.standard_normal(len(x))
    cov = np.cov(np.column_stack([x, y]).T)
    np.testing.assert_allclose(me.trait_regression(cov), [-0.3, 0.25], atol=0.01)


def test_within_mediation_by_hand_and_batched() -> None:
    lag = np.zeros((2, 3, 3))
    lag[..., 1, 0] = [0.3, 0.4]  # a
    lag[..., 2, 1] = [-0.5, -0.2]  # b
    lag[..., 2, 0] = [-0.1, 0.0]  # c'
    lag[..., 0, 0] = 0.5
    lag[..., 2, 2] = 0.2
    pcov = np.array([[[0.04, 0.01], [0.01, 0.09]], [[0.01, -0.02], [-0.02, 0.04]]])
    out = me.within_mediation(lag, pcov, [(1, 0), (2, 1)], 0, 1, 2)
    np.testing.assert_allclose(out["indirect_effect_within"], [-0.15 + 0.01, -0.08 - 0.02])
    np.testing.assert_allclose(out["indirect_effect_within_fixed"], [-0.15, -0.08])
    np.testing.assert_allclose(out["direct_path_within"], [-0.1, 0.0])
    # x_t -> y_(t+2): c' phi_xx + b a + phi_yy c' + cov(a, b).
    total = np.array([-0.1 * 0.5 - 0.15 + 0.2 * -0.1 + 0.01, 0.0 - 0.08 + 0.0 - 0.02])
    np.testing.assert_allclose(out["total_effect_within"], total)
    np.testing.assert_allclose(out["direct_effect_within"], [-0.1 * 0.5 + 0.2 * -0.1, 0.0])
    np.testing.assert_allclose(out["proportion_mediated_within"], [-0.14 / total[0], 1.0])
    # Without random paths the covariance term is zero.
    fixed = me.within_mediation(lag, None, [], 0, 1, 2)
    np.testing.assert_allclose(fixed["indirect_effect_within"], [-0.15, -0.08])


@pytest.mark.parametrize("corr", [0.6, -0.6])
def test_indirect_and_lag2_equal_monte_carlo_over_patients(corr: float) -> None:
    """E[a_i b_i] and E[(Phi_i^2)[y, x]] over drawn patients: the average of the products, not
    the product of the averages."""
    rng = np.random.default_rng(3)
    lag = np.array([[0.4, 0.0, 0.0], [0.3, 0.3, 0.0], [-0.1, -0.3, 0.3]])
    sd = np.array([0.15, 0.2])
    pcov = np.outer(sd, sd) * np.array([[1.0, corr], [corr, 1.0]])
    dev = rng.multivariate_normal([0.0, 0.0], pcov, size=1_000_000)
    phi = np.broadcast_to(lag, (len(dev), 3, 3)).copy()
    phi[:, 1, 0] += dev[:, 0]
    phi[:, 2, 1] += dev[:, 1]
    mc_indirect = np.mean(phi[:, 1, 0] * phi[:, 2, 1])
    mc_lag2 = np.mean((phi @ phi)[:, 2, 0])
    out = me.within_mediation(lag, pcov, [(1, 0), (2, 1)], 0, 1, 2)
    assert out["indirect_effect_within"] == pytest.approx(mc_indirect, abs=2e-4)
    assert out["total_effect_within"] == pytest.approx(mc_lag2, abs=2e-4)
    # Dropping the covariance misses it by the covariance itself.
    assert abs(out["indirect_effect_within_fixed"] - mc_indirect) > 0.015


def test_informant_effects_by_hand() -> None:
    lag = np.array([[0.3, 0.1, 0.0], [0.2, 0.3, 0.0], [-0.25, -0.1, 0.3]])
    innov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]])
    pcov = np.array([[1.0, 0.5, -0.4], [0.5, 1.0, -0.2], [-0.4, -0.2, 1.0]])
    tcov = np.array([[0.1, 0.0, 0.0], [0.0, 0.1, 0.02], [0.0, 0.02, 0.1]])
    s = moments.stationary_cov(lag, innov)
    # A first state at stationarity: the within-person variance is the stationary one.
    state_var = me.within_variance(lag, innov, s, np.array([12, 12, 30]))
    np.testing.assert_allclose(state_var, np.diag(s), rtol=1e-12)
    out = me.informant_effects(lag, innov, pcov, tcov, state_var)
    assert out["state_effect"] == pytest.approx(-0.25)
    assert out["state_effect_second"] == pytest.approx(-0.1)
    assert out["state_effect_difference"] == pytest.approx(-0.15)
    assert out["state_corr_informants"] == pytest.approx(0.3)
    assert out["cross_lag_second_from_first"] == pytest.approx(0.2)
    # Partial regression: solve [[1, .5], [.5, 1]] b = (-.4, -.2) -> (-.4, 0).
    assert out["trait_effect_patient"] == pytest.approx(-0.4)
    assert out["trait_effect_patient_second"] == pytest.approx(0.0, abs=1e-12)
    assert out["trait_effect_patient_difference"] == pytest.approx(-0.4)
    assert out["trait_corr_informants_patient"] == pytest.approx(0.5)
    assert out["trait_effect_therapist_second"] == pytest.approx(0.2)
    assert out["trait_corr_informants_therapist"] == pytest.approx(0.0)
    std = -0.25 * np.sqrt(s[0, 0] / s[2, 2])
    assert out["state_effect_std"] == pytest.approx(std)


def _simulated_within_variance(
    lag: np.ndarray,
    innov: np.ndarray,
    first: np.ndarray,
    lengths: np.ndarray,
    deviation: np.ndarray,
    paths: list[tuple[int, int]],
    reps: int,
    seed: int,
) -> np.ndarray:
    """Mean square of simulated states over every patient's sessions (reps series each)."""
    rng = np.random.default_rng(seed)
    k = lag.shape[0]
    phi = np.broadcast_to(lag, (len(lengths), k, k)).copy()
    for r, (to, source) in enumerate(paths):
        phi[:, to, source] += deviation[:, r]
    phi = np.repeat(phi, reps, axis=0)
    n_len = np.repeat(lengths, reps)
    w = rng.standard_normal((len(n_len), k)) @ np.linalg.cholesky(first).T
    total = np.zeros(k)
    for t in range(int(lengths.max())):
        total += np.sum((n_len > t)[:, None] * w**2, axis=0)
        w = (
            np.einsum("nij,nj->ni", phi, w)
            + rng.standard_normal(w.shape) @ np.linalg.cholesky(innov).T
        )
    return total / np.sum(n_len)


def test_within_variance_with_random_paths_equals_simulated_series() -> None:
    """The within-person variance that standardises state effects: the mean square of the
    states over every session of every patient, each with its own lag matrix (random paths)
    and series length, from a first state that is not at stationarity. The truth is a Monte
    Carlo over simulated series; the fixed lag's stationary variance misses it."""
    rng = np.random.default_rng(11)
    lag = np.array([[0.5, 0.1, 0.0], [0.1, 0.3, 0.0], [-0.25, -0.1, 0.4]])
    innov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 0.5]])
    first = np.diag([2.0, 0.5, 1.0])
    paths = [(0, 0), (2, 0)]
    n = 40
    deviation = rng.multivariate_normal([0.0, 0.0], [[0.04, 0.01], [0.01, 0.02]], size=n)
    lengths = rng.integers(4, 16, size=n)
    got = me.within_variance(lag, innov, first, lengths, deviation, paths)
    mc = _simulated_within_variance(lag, innov, first, lengths, deviation, paths, 5000, 2)
    np.testing.assert_allclose(got, mc, rtol=0.02)
    stationary = np.diag(moments.stationary_cov(lag, innov))
    assert np.max(np.abs(stationary / mc - 1)) > 0.05  # the check is not vacuous
    # Batched over draws: each draw's own numbers.
    batch = me.within_variance(
        np.stack([lag, 0.5 * lag]),
        np.stack([innov, innov]),
        np.stack([first, first]),
        lengths,
        np.stack([deviation, deviation]),
        paths,
    )
    np.testing.assert_allclose(batch[0], got, rtol=1e-12)
    half = me.within_variance(0.5 * lag, innov, first, lengths, deviation, paths)
    np.testing.assert_allclose(batch[1], half, rtol=1e-12)


def test_standardised_state_effects_are_finite_in_non_stationary_draws() -> None:
    """A draw whose fixed dynamics are explosive (autoregression 1.1) has no stationary
    covariance; its standardised state effects come from the finite series' variances (a
    Monte Carlo over simulated 12-session series) and are finite."""
    lag = np.array([[1.1, 0.0, 0.0], [0.0, 0.3, 0.0], [-0.25, -0.1, 0.3]])
    innov = np.eye(3)
    first = np.eye(3)
    lengths = np.full(5, 12)
    state_var = me.within_variance(lag, innov, first, lengths)
    mc = _simulated_within_variance(lag, innov, first, lengths, np.zeros((5, 0)), [], 20000, 4)
    np.testing.assert_allclose(state_var, mc, rtol=0.03)
    pcov = np.array([[1.0, 0.5, -0.4], [0.5, 1.0, -0.2], [-0.4, -0.2, 1.0]])
    out = me.informant_effects(lag, innov, pcov, None, state_var)
    assert all(np.isfinite(v).all() for v in out.values())
    assert out["state_effect_std"] == pytest.approx(-0.25 * np.sqrt(mc[0] / mc[2]), rel=0.03)


def test_end_outcome_effects_per_sd_of_each_level_and_odds_ratio() -> None:
    out = me.end_outcome_effects(
        {
            "end_trait_effect_patient": (np.array([-0.5]), np.array([0.8])),
            "end_trait_effect_therapist": (np.array([2.0]), np.array([0.3])),
        },
        np.array([2.0]),
        np.array([0.1]),
        binary=True,
    )
    np.testing.assert_allclose(out["end_trait_effect_patient_per_sd"], [-0.4])
    np.testing.assert_allclose(out["end_trait_effect_therapist_per_sd"], [0.6])
    np.testing.assert_allclose(out["end_change_effect_per_sd"], [0.2])
    np.testing.assert_allclose(out["end_trait_effect_patient_odds_ratio_per_sd"], [np.exp(-0.4)])
    np.testing.assert_allclose(out["end_trait_effect_therapist_odds_ratio_per_sd"], [np.exp(0.6)])
    gauss = me.end_outcome_effects(
        {"end_trait_effect_patient": (np.array([1.0]), np.array([2.0]))}, None, None, False
    )
    assert set(gauss) == {"end_trait_effect_patient", "end_trait_effect_patient_per_sd"}


def test_end_trait_effects_are_per_sd_of_their_own_level() -> None:
    """The fit's per-SD end effects take each part's SD from its own level's trait covariance
    (the predictor's entry): patient variance 4 -> SD 2, therapist variance 9 -> SD 3, by hand;
    the whole trait's SD (sqrt 13) would give other numbers."""
    import xarray as xr

    from bayes_alliance.mechanisms.effect_draws import _end_effects

    post = xr.Dataset(
        {
            "end_trait_effect_patient": (("chain", "draw"), np.array([[0.5]])),
            "end_trait_effect_therapist": (("chain", "draw"), np.array([[-1.0]])),
        }
    )
    patient = np.array([[[[4.0, 0.3], [0.3, 1.0]]]])
    therapist = np.array([[[[9.0, -0.2], [-0.2, 1.0]]]])
    out = _end_effects(post, patient, therapist, binary=False)
    assert float(out["end_trait_effect_patient_per_sd"].ravel()[0]) == pytest.approx(1.0)
    assert float(out["end_trait_effect_therapist_per_sd"].ravel()[0]) == pytest.approx(-3.0)
