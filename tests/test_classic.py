"""Two-step methods against values computed by hand on a small table."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_alliance import SessionData
from bayes_alliance.analysis import classic
from tests.conftest import ROLES, long_frame


@pytest.fixture
def data() -> SessionData:
    # A: sessions 1, 2, 4 (3 skipped), x = 2, 4, 6, y = 1, 2, 3
    # B: sessions 1, 2, 3, x = 1, 1, 4, y = 2, 0, 1
    df = long_frame(
        [
            ("T", "A", 1, 2.0, 1.0),
            ("T", "A", 2, 4.0, 2.0),
            ("T", "A", 4, 6.0, 3.0),
            ("T", "B", 1, 1.0, 2.0),
            ("T", "B", 2, 1.0, 0.0),
            ("T", "B", 3, 4.0, 1.0),
        ]
    )
    with pytest.warns(UserWarning):  # one therapist
        return SessionData.from_frame(df, **ROLES)


def test_person_mean_centring(data):
    out = classic.person_mean_centre(data, "predictor")
    assert out["trait"].tolist() == [4, 4, 4, 2, 2, 2]
    assert out["state"].tolist() == [-2, 0, 2, -1, -1, 2]
    assert out["session"].tolist() == [1, 2, 4, 1, 2, 3]


def test_baseline_centring_first_and_first_two(data):
    one = classic.baseline_centre(data, "predictor", k=1)
    assert one["trait"].tolist() == [2, 2, 2, 1, 1, 1]
    assert one["state"].tolist() == [0, 2, 4, 0, 0, 3]
    two = classic.baseline_centre(data, "predictor", k=2)
    assert two["trait"].tolist() == [3, 3, 3, 1, 1, 1]
    with pytest.raises(ValueError, match="k must be at least 1"):
        classic.baseline_centre(data, k=0)


def test_detrending_and_growth(data):
    gr = classic.growth(data, "predictor")
    # A: sessions (1, 2, 4), x (2, 4, 6): slope 6 / (14/3) = 9/7, intercept 4 - 9/7 * 7/3 = 1
    assert gr["slope"].iloc[0] == pytest.approx(9 / 7)
    assert gr["intercept"].iloc[0] == pytest.approx(1.0)
    # B: sessions (1, 2, 3), x (1, 1, 4): slope 1.5, intercept 2 - 1.5 * 2 = -1
    assert gr["slope"].iloc[1] == pytest.approx(1.5)
    assert gr["intercept"].iloc[1] == pytest.approx(-1.0)
    out = classic.detrend(data, "predictor")
    np.testing.assert_allclose(out["state"].iloc[:3], [-2 / 7, 3 / 7, -1 / 7])
    np.testing.assert_allclose(out["state"].iloc[3:], [0.5, -1.0, 0.5])
    assert out["trait"].iloc[0] == pytest.approx(1.0)


def test_difference_scores_respect_gaps(data):
    out = classic.difference_scores(data, "predictor")
    np.testing.assert_array_equal(out["state"], [np.nan, 2, np.nan, np.nan, 0, 3])


def test_lagged_respects_gaps(data):
    out = classic.lagged(data, "outcome", 1)
    np.testing.assert_array_equal(out["lag1"], [np.nan, 1, np.nan, np.nan, 2, 0])
    two = classic.lagged(data, "outcome", 2)
    np.testing.assert_array_equal(two["lag2"], [np.nan, np.nan, 2, np.nan, np.nan, 2])


def test_within_autoregression_by_hand(data):
    # centred y: A (-1, 0, ., 1), B (1, -1, 0); pairs (0, -1), (-1, 1), (0, -1): -1 / 3
    assert classic.within_autoregression(data, "outcome") == pytest.approx(-1 / 3)


def test_ols_matches_normal_equations_and_hc1():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(30), rng.normal(size=30)])
    y = 1 + 2 * x[:, 1] + rng.normal(size=30)
    beta, se = classic.ols(x, y)
    np.testing.assert_allclose(beta, np.linalg.lstsq(x, y, rcond=None)[0])
    resid = y - x @ beta
    xtx = np.linalg.inv(x.T @ x)
    np.testing.assert_allclose(se, np.sqrt(np.diag(xtx) * (resid @ resid) / 28))
    # One observation per cluster: CR1 reduces to HC1 = n / (n - k) * sandwich.
    _, se_cl = classic.ols(x, y, cluster=np.arange(30))
    meat = (x * resid[:, None]).T @ (x * resid[:, None])
    np.testing.assert_allclose(se_cl, np.sqrt(np.diag(30 / 28 * xtx @ meat @ xtx)))


def test_two_step_regression_needs_enough_rows(data):
    # Only three rows have both lags here: fewer than the four terms.
    with pytest.raises(ValueError, match="3 complete rows for 4 terms"):
        classic.two_step_regression(data)


def test_two_step_regression_on_simulated_data():
    from bayes_alliance import simulate

    df, _ = simulate(seed=3, n_therapists=10, patients_per_therapist=5, sessions=10)
    d = SessionData.from_frame(
        df,
        patient="patient",
        therapist="therapist",
        session="session",
        predictor="alliance",
        outcome="symptoms",
    )
    table = classic.two_step_regression(d)
    assert table.index.tolist() == [
        "intercept",
        "trait_effect",
        "state_effect",
        "outcome_autoregression",
    ]
    assert list(table.columns) == ["estimate", "se"]
    assert (table["se"] > 0).all()
