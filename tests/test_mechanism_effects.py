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
    out = me.informant_effects(lag, innov, pcov, tcov)
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
    s = moments.stationary_cov(lag, innov)
    std = -0.25 * np.sqrt(s[0, 0] / s[2, 2])
    assert out["state_effect_std"] == pytest.approx(std)


def test_end_outcome_effects_per_sd_and_odds_ratio() -> None:
    out = me.end_outcome_effects(
        np.array([-0.5]), np.array([2.0]), np.array([0.8]), np.array([0.1]), binary=True
    )
    np.testing.assert_allclose(out["end_trait_effect_per_sd"], [-0.4])
    np.testing.assert_allclose(out["end_change_effect_per_sd"], [0.2])
    np.testing.assert_allclose(out["end_trait_effect_odds_ratio_per_sd"], [np.exp(-0.4)])
    gauss = me.end_outcome_effects(np.array([1.0]), None, np.array([2.0]), None, binary=False)
    assert set(gauss) == {"end_trait_effect", "end_trait_effect_per_sd"}
