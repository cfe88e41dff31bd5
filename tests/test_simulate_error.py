"""Measurement error in the simulator: error-free settings keep their data bit for bit, the
observed scores carry independent errors of the stated SD, the lag-1 autocorrelation of the
observed within deviations is attenuated by the reliability, and reliabilities invert to SDs.

The truths come from outside the code under test: hashes recorded before measurement error
existed, textbook AR(1) moments, a stationary covariance summed by brute force, and Monte Carlo
standard errors derived here."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from bayes_alliance import simulate
from bayes_alliance.sim.settings import TrueParameters

MANY_OPTIONS = dict(
    n_therapists=3,
    p_missing_session=0.1,
    p_missing_value=0.05,
    dropout=0.2,
    informant=True,
    moderator=True,
    sd_state_effect_patient=0.05,
    baseline=True,
    trend_outcome=-0.02,
)
# sha256 of (data, truth.states, truth.patients) written as CSV with 6 significant digits
# (robust to last-bit differences between BLAS builds, while any change of a random stream
# changes the data at the first digit), computed with the simulator of commit e8b1d2a on
# branch `me`, before measurement error was added to it.
BEFORE = {
    1: (
        "3829d7952e088c8aa6927c02aafab96035e0f0c2f79479d636692f3a4cc2986d",
        "e3e47655d2d1d7bb909b2ed0f8ea8ebe6f60a3f5c807ae71cd71d92dfffe8b66",
        "a2fe3c4b00a748c4ebe3db27398c208158888f5acb18712c45b2335aff14c1fd",
    ),
    7: (
        "04d31f36734281a5c9267f0c34d00609979703489809115aac2abb407ea28f45",
        "e4fb9106947076c31e8c5090716e2d609fb9368174707a02074d2190cb0f3d78",
        "fffc318306f14314af7a0e74efd7e8def2e2efc8ac9679591b5a79e1eef9534b",
    ),
}


def _hash(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False, float_format="%.6g").encode()).hexdigest()


@pytest.mark.parametrize("seed", [1, 7])
def test_error_free_data_are_those_of_the_simulator_before_measurement_error(seed):
    options = MANY_OPTIONS if seed == 7 else {}
    df, truth = simulate(seed=seed, **options)
    assert (_hash(df), _hash(truth.states), _hash(truth.patients)) == BEFORE[seed]
    # Zero SDs and reliability 1 draw nothing: the same data bit for bit.
    for zero in (
        dict(measurement_error_sd_predictor=0.0, measurement_error_sd_outcome=0.0),
        dict(reliability=1.0),
        dict(reliability_predictor=1.0, measurement_error_sd_outcome=0.0),
    ):
        again, t = simulate(seed=seed, **options, **zero)
        pd.testing.assert_frame_equal(again, df, check_exact=True)
        pd.testing.assert_frame_equal(t.states, truth.states, check_exact=True)
        assert t.icc == t.icc_error_free == truth.icc
        assert t.reliability == {"predictor": 1.0, "outcome": 1.0}


def test_error_in_one_variable_leaves_the_other_and_the_states_unchanged():
    df, truth = simulate(seed=3, n_therapists=4)
    ex, tx = simulate(seed=3, n_therapists=4, measurement_error_sd_predictor=0.3)
    ey, ty = simulate(seed=3, n_therapists=4, measurement_error_sd_outcome=0.3)
    pd.testing.assert_series_equal(ex["symptoms"], df["symptoms"], check_exact=True)
    pd.testing.assert_series_equal(ey["alliance"], df["alliance"], check_exact=True)
    assert not np.allclose(ex["alliance"], df["alliance"])
    assert not np.allclose(ey["symptoms"], df["symptoms"])
    for t in (tx, ty):
        pd.testing.assert_frame_equal(t.states, truth.states, check_exact=True)
        pd.testing.assert_frame_equal(t.patients, truth.patients, check_exact=True)


def _deviations(df: pd.DataFrame, truth, col: str, var: str) -> tuple[np.ndarray, np.ndarray]:
    """Observed within deviations from the patients' latent means, and the states, as
    patients x sessions arrays (complete data)."""
    merged = df.merge(truth.states, on=["patient", "session"]).merge(
        truth.patients[["patient", f"trait_{var}"]], on="patient"
    )
    merged = merged.sort_values(["patient", "session"])
    n_pat = merged["patient"].nunique()
    obs = (merged[col] - merged[f"trait_{var}"]).to_numpy().reshape(n_pat, -1)
    state = merged[f"state_{var}"].to_numpy().reshape(n_pat, -1)
    return obs, state


@pytest.fixture(scope="module")
def noisy():
    # 300 patients x 40 sessions, complete; the default (cross-lagged) dynamics.
    omega = (0.3, 0.25)
    df, truth = simulate(
        seed=31,
        n_therapists=60,
        patients_per_therapist=5,
        sessions=40,
        measurement_error_sd_predictor=omega[0],
        measurement_error_sd_outcome=omega[1],
    )
    return df, truth, omega


def test_observed_within_variance_exceeds_the_states_by_the_error_variance(noisy):
    df, truth, omega = noisy
    errors = []
    for k, (col, var) in enumerate((("alliance", "predictor"), ("symptoms", "outcome"))):
        om = omega[k]
        obs, state = _deviations(df, truth, col, var)
        n = obs.size
        # Deviations from the known latent means have mean 0: second moments about 0. Cell by
        # cell d = (w + e)^2 - w^2 = 2 w e + e^2; with e independent of every w and of the other
        # errors, the terms are uncorrelated across cells and Var(d) = 4 Var(w) omega^2 +
        # 2 omega^4 (normal e), however the states are correlated.
        excess = np.mean(obs**2) - np.mean(state**2)
        var_w = truth.stationary_within_cov[k, k]
        mcse = np.sqrt((4 * var_w * om**2 + 2 * om**4) / n)
        assert abs(excess - om**2) < 4 * mcse, (var, excess, om**2, mcse)
        errors.append((obs - state).ravel())
    # The errors are independent of each other and over sessions (|r| < 4 / sqrt(n)).
    ex, ey = errors
    bound = 4 / np.sqrt(ex.size)
    assert abs(np.corrcoef(ex, ey)[0, 1]) < bound
    lagged = ex.reshape(obs.shape)
    assert abs(np.corrcoef(lagged[:, 1:].ravel(), lagged[:, :-1].ravel())[0, 1]) < bound


def test_observed_autocorrelation_is_attenuated_by_the_reliability():
    # No cross-lags and uncorrelated innovations: each state is a univariate AR(1), w_t =
    # phi w_(t-1) + u_t, with Var(w) = sigma^2 / (1 - phi^2). Plus white noise of variance
    # omega^2 the observed lag-1 autocorrelation is rho phi, rho = Var(w) / (Var(w) +
    # omega^2) (Schuurman & Hamaker 2019).
    phi, sigma, omega = {"predictor": 0.5, "outcome": 0.4}, (0.4, 0.35), (0.35, 0.3)
    df, truth = simulate(
        seed=32,
        n_therapists=60,
        patients_per_therapist=5,
        sessions=50,
        predictor_autoregression=phi["predictor"],
        outcome_autoregression=phi["outcome"],
        state_effect=0.0,
        reverse_state_effect=0.0,
        innovation_corr=0.0,
        innovation_sd_predictor=sigma[0],
        innovation_sd_outcome=sigma[1],
        measurement_error_sd_predictor=omega[0],
        measurement_error_sd_outcome=omega[1],
    )
    for k, (col, var) in enumerate((("alliance", "predictor"), ("symptoms", "outcome"))):
        var_w = sigma[k] ** 2 / (1 - phi[var] ** 2)
        rho = var_w / (var_w + omega[k] ** 2)
        assert truth.reliability[var] == pytest.approx(rho, rel=1e-12)
        obs, _ = _deviations(df, truth, col, var)
        # Ratio estimator r = sum_i a_i / sum_i b_i over patients (known mean 0), with its
        # patient-clustered delta-method standard error.
        a = np.sum(obs[:, 1:] * obs[:, :-1], axis=1)
        b = 0.5 * np.sum(obs[:, 1:] ** 2 + obs[:, :-1] ** 2, axis=1)
        r = a.sum() / b.sum()
        mcse = np.sqrt(np.sum((a - r * b) ** 2)) / b.sum()
        assert abs(r - rho * phi[var]) < 4 * mcse, (var, r, rho * phi[var], mcse)
        # Attenuation is visible: the unattenuated value is many SEs away.
        assert phi[var] - r > 10 * mcse


def _brute_stationary(phi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """sum_k Phi^k Sigma Phi'^k, summed until the terms vanish."""
    total, term = np.zeros((2, 2)), sigma.copy()
    for _ in range(2000):
        total += term
        term = phi @ term @ phi.T
    return total


@pytest.mark.parametrize("reliabilities", [(0.6, 0.8), (0.95, 0.3), (1.0, 0.5)])
def test_reliability_helper_inverts(reliabilities):
    p = TrueParameters()
    q = p.with_reliability(*reliabilities)
    assert q.reliability == pytest.approx(reliabilities, rel=1e-12)
    # Against the stationary state variances summed by brute force from the VAR(1) itself
    # (defaults: cross-lagged, correlated innovations).
    phi = np.array(
        [
            [p.predictor_autoregression, p.reverse_state_effect],
            [p.state_effect, p.outcome_autoregression],
        ]
    )
    sx, sy, r = p.innovation_sd_predictor, p.innovation_sd_outcome, p.innovation_corr
    var_w = np.diag(_brute_stationary(phi, np.array([[sx**2, r * sx * sy], [r * sx * sy, sy**2]])))
    omega = np.sqrt(var_w * (1 - np.array(reliabilities)) / np.array(reliabilities))
    assert q.error_sd == pytest.approx(tuple(omega), rel=1e-10)
    assert q.with_reliability(*q.reliability).error_sd == pytest.approx(q.error_sd, rel=1e-10)
    # The flat settings give the same SDs, in the truth's parameters.
    _, truth = simulate(
        seed=1,
        n_therapists=2,
        reliability_predictor=reliabilities[0],
        reliability_outcome=reliabilities[1],
    )
    assert truth.params.error_sd == pytest.approx(q.error_sd, rel=1e-12)
    assert tuple(truth.reliability.values()) == pytest.approx(reliabilities, rel=1e-12)
    rec = json.loads(truth.to_json())
    assert rec["reliability"]["predictor"] == pytest.approx(reliabilities[0])
    assert rec["params"]["measurement_error_sd_outcome"] == pytest.approx(q.error_sd[1])


def test_one_predictor_reliability_keeps_the_outcome_error():
    p = TrueParameters(measurement_error_sd_outcome=0.2).with_reliability(predictor=0.7)
    assert p.measurement_error_sd_outcome == 0.2
    assert p.reliability[0] == pytest.approx(0.7)


@pytest.mark.parametrize("bad", [0.0, -0.2, 1.2, float("nan")])
def test_bad_reliabilities_are_rejected(bad):
    with pytest.raises(ValueError, match=r"reliability must lie in \(0, 1\]"):
        TrueParameters().with_reliability(predictor=bad)
    with pytest.raises(ValueError, match=r"reliability must lie in \(0, 1\].*outcome"):
        simulate(seed=1, n_therapists=2, reliability_outcome=bad)


def test_conflicting_or_impossible_error_settings_are_rejected():
    with pytest.raises(ValueError, match="reliability_predictor both set"):
        simulate(seed=1, reliability_predictor=0.8, measurement_error_sd_predictor=0.1)
    with pytest.raises(ValueError, match="reliability and reliability_outcome both set"):
        simulate(seed=1, reliability=0.8, reliability_outcome=0.7)
    with pytest.raises(ValueError, match="measurement_error_sd_outcome must be a finite"):
        simulate(seed=1, measurement_error_sd_outcome=-0.1)
    with pytest.raises(ValueError, match="Did you mean 'reliability_outcome'"):
        simulate(seed=1, reliability_outcom=0.8)
    with pytest.raises(ValueError, match="stationary"):
        TrueParameters(outcome_autoregression=1.2).with_reliability(outcome=0.8)


def test_observed_iccs_add_the_error_to_the_session_share(noisy):
    df, truth, omega = noisy
    for k, (col, var) in enumerate((("alliance", "predictor"), ("symptoms", "outcome"))):
        free, obs = truth.icc_error_free[var], truth.icc[var]
        assert sum(obs.values()) == pytest.approx(1.0)
        # Between variances are the same; the observed total is larger by omega^2.
        ratio = free["patient"] / obs["patient"]
        assert free["therapist"] / obs["therapist"] == pytest.approx(ratio)
        total_free = omega[k] ** 2 / (ratio - 1)  # ratio = (V + omega^2) / V
        assert obs["session"] * (total_free + omega[k] ** 2) == pytest.approx(
            free["session"] * total_free + omega[k] ** 2
        )
        # The observed within variance the shares imply, Var_w + omega^2, is that of the
        # data about the latent means (patient-clustered SE; the between variances of one
        # data set are too noisy to check the shares themselves this way).
        dev, _ = _deviations(df, truth, col, var)
        per_patient = np.mean(dev**2, axis=1)
        mcse = per_patient.std(ddof=1) / np.sqrt(len(per_patient))
        implied = obs["session"] * (total_free + omega[k] ** 2)
        assert abs(per_patient.mean() - implied) < 4 * mcse, (var, per_patient.mean(), implied)
