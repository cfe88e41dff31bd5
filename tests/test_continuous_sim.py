"""The continuous-time simulator (bayes_alliance.sim.continuous): exact moments of its
interval steps against scipy, dates as real dates; and (slow) recovery of the drift matrix
from sessions 1-21 days apart over three seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl

from bayes_alliance.core import vocab as v
from bayes_alliance.data.readers import sessions_from_dates
from bayes_alliance.data.session_data import SessionData
from bayes_alliance.sim.continuous import simulate_dated
from bayes_alliance.spec.model_spec import ModelSpec


def test_simulated_steps_have_the_process_moments():
    """Two sessions 9 days apart, no trait variance: Cov(w(t + 9), w(t)) = expm(9 A) S and
    Var(w) = S (scipy's expm and Lyapunov solver), over 6,000 patients."""
    df, truth = simulate_dated(
        seed=1, n_patients=6000, n_sessions=2, interval_days=(9, 9), trait_cov=np.zeros((2, 2))
    )
    z = df[["alliance", "symptoms"]].to_numpy().reshape(6000, 2, 2) - np.array(truth.means)
    stat = sl.solve_continuous_lyapunov(truth.drift, -truth.diffusion)
    cross = z[:, 1, :].T @ z[:, 0, :] / len(z)  # E[w(t + 9) w(t)']
    ref = sl.expm(9 * truth.drift) @ stat
    se = np.sqrt(np.outer(np.diag(stat), np.diag(stat)) / len(z))
    assert np.all(np.abs(cross - ref) < 4 * se)
    assert np.all(np.abs(np.cov(z[:, 0, :].T) - stat) < 4 * np.sqrt(2) * se)
    days = pd.to_datetime(df["date"]).groupby(df["patient"]).diff().dropna().dt.days
    assert set(days) == {9}


def test_dates_give_irregular_intervals():
    df, _ = simulate_dated(seed=2, n_patients=20, n_sessions=8)
    dated = sessions_from_dates(
        df, patient="patient", date="date", session="session", elapsed="time"
    )
    data = SessionData.from_frame(
        dated,
        patient="patient",
        session="session",
        predictor="alliance",
        outcome="symptoms",
        time="time",
    )
    dt = np.diff(data.times, axis=1)
    assert dt.min() >= 1 and dt.max() <= 21 and len(np.unique(dt)) > 10


@pytest.mark.slow
def test_drift_recovered_over_seeds_with_irregular_intervals():
    """120 patients x 15 sessions 1-21 days apart, three seeds, 2 x 500 draws: each drift
    entry inside its 90% interval in at least 10 of the 12 (entry, seed) cases, and the mean
    bias over seeds below 0.02 per day for every entry (a quarter of the smallest diagonal
    entry's size)."""
    from bayes_alliance.inference.fit import fit

    inside, est = 0, []
    for seed in (1, 2, 3):
        df, truth = simulate_dated(seed=seed, n_patients=120, n_sessions=15)
        dated = sessions_from_dates(
            df, patient="patient", date="date", session="session", elapsed="time"
        )
        data = SessionData.from_frame(
            dated,
            patient="patient",
            session="session",
            predictor="alliance",
            outcome="symptoms",
            time="time",
        )
        res = fit(
            data,
            ModelSpec(therapist_level=False, time_model="continuous"),
            draws=500,
            tune=500,
            chains=2,
            random_seed=seed,
            progressbar=False,
        )
        row = []
        for name, (i, j) in zip(v.DRIFT_PARAMETERS, ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
            d = res.draws(name).ravel()
            lo, hi = np.quantile(d, [0.05, 0.95])
            inside += lo <= truth.drift[i, j] <= hi
            row.append(d.mean() - truth.drift[i, j])
        est.append(row)
    bias = np.mean(est, axis=0)
    print(f"drift entries inside their 90% interval: {inside} of 12; mean bias {bias}")
    assert inside >= 10, (inside, est)
    assert np.all(np.abs(bias) < 0.02), bias
