"""Errors-in-variables moment estimates of the end-of-treatment effects, an independent check
of what each simulated data set of the end-outcome recovery study says.

Usage::

    python benchmarks/end_outcome_moments.py [--sessions 20] [--seeds 401-410]

For each seed it draws the data of ``tests/test_mechanism_recovery_slow.py`` (two series, 200
patients, slopes with SD 0.1, Gaussian end outcome with g_T = -0.5, g_S = -3) and, knowing the
true dynamics of the alliance (AR(1), autoregression 0.4, innovation SD 1, stationary start),
computes every patient's GLS level and slope, their covariance over patients minus the known
GLS error covariance (the true covariance of level and slope), and the regression of the
outcome on level and slope from that covariance and the outcome's covariances with the
estimates (errors in the predictors only, so those are unbiased). It prints the per-unit and
per-SD change effect and the trait effect per seed. No Bayesian model is involved.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bayes_alliance.sim.mechanisms import MechanismTruth, simulate_mechanisms

AUTOREGRESSION = 0.4
CHANGE_SD = 0.1


def draw(seed: int, sessions: int) -> tuple[pd.DataFrame, MechanismTruth]:
    """One data set of the end-outcome recovery study (also used by state_effect_oracle.py)."""
    return simulate_mechanisms(
        seed=seed,
        design="two_series",
        patients_per_therapist=200,
        n_sessions=sessions,
        change_sd=CHANGE_SD,
        end_effects=(-0.5, -3.0),
    )


def moments(seed: int, sessions: int) -> dict[str, float]:
    df, _ = draw(seed, sessions)
    t = np.arange(sessions) - 0.5 * (sessions - 1)
    x = np.column_stack([np.ones(sessions), t])
    lag = np.abs(np.subtract.outer(np.arange(sessions), np.arange(sessions)))
    omega = AUTOREGRESSION**lag / (1 - AUTOREGRESSION**2)
    w = np.linalg.inv(omega)
    err = np.linalg.inv(x.T @ w @ x)  # GLS error covariance of (level, slope)
    z = df.pivot(index="patient", columns="session", values="alliance").to_numpy()
    post = df.groupby("patient")["post_symptoms"].first().to_numpy()
    est = (err @ x.T @ w @ z.T).T
    true_cov = np.cov(est.T) - err
    with_outcome = np.array([np.cov(post, est[:, j])[0, 1] for j in range(2)])
    g_t, g_s = np.linalg.solve(true_cov, with_outcome)
    tau = float(np.sqrt(true_cov[1, 1]))
    return {
        "trait_effect": g_t,
        "change_effect": g_s,
        "change_effect_per_sd": g_s * tau,
        "slope_sd": tau,
        "reliability": true_cov[1, 1] / np.var(est[:, 1], ddof=1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--seeds", default="401-410", help="first-last")
    a = ap.parse_args()
    first, last = (int(v) for v in a.seeds.split("-"))
    rows = {s: moments(s, a.sessions) for s in range(first, last + 1)}
    print(f"{a.sessions} sessions; truth: trait -0.5, change -3 per unit, -0.3 per SD")
    print("seed  trait_effect  change_effect  per_sd  slope_sd  reliability")
    for s, r in rows.items():
        print(
            f"{s}  {r['trait_effect']:12.3f}  {r['change_effect']:13.2f}  "
            f"{r['change_effect_per_sd']:6.3f}  {r['slope_sd']:8.3f}  {r['reliability']:11.2f}"
        )
    for key in ("trait_effect", "change_effect", "change_effect_per_sd"):
        v = np.array([r[key] for r in rows.values()])
        print(f"{key}: mean {v.mean():.3f}, SD over seeds {v.std(ddof=1):.3f}")


if __name__ == "__main__":
    main()
