"""Shared fixtures. Reference data live in ../shared/reference beside the checkout (CI has them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REFERENCE = Path(
    os.environ.get(
        "BAYES_ALLIANCE_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "reference"
    )
)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (set BAYES_ALLIANCE_REFERENCE)")
    return REFERENCE


def long_frame(rows: list[tuple]) -> pd.DataFrame:
    """(therapist, patient, session, x, y) tuples -> DataFrame."""
    return pd.DataFrame(rows, columns=["therapist", "patient", "session", "x", "y"])


ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "x",
    "outcome": "y",
}


RECOVERY_SETTINGS = dict(
    n_therapists=25,
    patients_per_therapist=(6, 8),
    sessions=8,
    p_missing_session=0.08,
    p_missing_value=0.03,
    dropout=0.15,
    innovation_corr=-0.3,
    reverse_state_effect=0.1,
)


def oracle_lag_matrix(truth) -> np.ndarray:
    """Lag matrix from OLS of the true (unobservable) states on their lags: what a method that
    saw the states themselves would report for this particular draw."""
    st = truth.states.sort_values(["patient", "session"])
    z = st[["state_predictor", "state_outcome"]].to_numpy()
    same = st["patient"].to_numpy()[1:] == st["patient"].to_numpy()[:-1]
    coef, *_ = np.linalg.lstsq(z[:-1][same], z[1:][same], rcond=None)
    return coef.T


def representative_seed(start: int = 2026, tol: float = 0.035) -> int:
    """First seed whose draw is representative: its oracle lag matrix lies within ``tol`` of the
    population values (about 1.5 oracle SEs at this size). A fixed-seed recovery test then checks
    the model, not the luck of the draw. (Seeds 2026-2029 drew states whose own lag estimates were
    -0.161, 0.357, -0.245 and -0.149 for population values -0.20, 0.40, -0.20, -0.20; the first
    three were fitted and each put one of six truths just outside its 94% interval while the
    posterior tracked the oracle.) Calibration across seeds is the slow coverage study's job."""
    from bayes_alliance import simulate

    for seed in range(start, start + 200):
        _, truth = simulate(seed=seed, **RECOVERY_SETTINGS)
        if np.abs(oracle_lag_matrix(truth) - truth.params.phi).max() < tol:
            return seed
    raise RuntimeError("no representative seed found")


@pytest.fixture(scope="session")
def recovery():
    """One fixed-seed three-level data set and its fit, shared by the model tests."""
    import warnings

    from bayes_alliance import SessionData, simulate
    from bayes_alliance.datasets import EXAMPLE_ROLES
    from bayes_alliance.inference.fit import fit

    df, truth = simulate(seed=representative_seed(), **RECOVERY_SETTINGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = SessionData.from_frame(df, **EXAMPLE_ROLES)
        result = fit(data, draws=600, tune=600, chains=2, random_seed=7, progressbar=False)
    return df, truth, data, result


@pytest.fixture(scope="session")
def baseline_cli_fit(tmp_path_factory):
    """One small fit with a baseline characteristic through the command line (48 patients,
    8 sessions): its output folder (effects.csv, fit.nc, convergence.json), the exit code and
    the simulation's truth. Shared by the mediation and report tests."""
    import warnings

    from bayes_alliance import simulate
    from bayes_alliance.cli.app import main

    df, truth = simulate(
        seed=8,
        n_therapists=12,
        patients_per_therapist=4,
        sessions=8,
        baseline_effect_predictor=0.4,
        baseline_effect_outcome=-0.2,
    )
    folder = tmp_path_factory.mktemp("baseline_fit")
    csv = folder / "d.csv"
    df.to_csv(csv, index=False)
    out = folder / "o"
    argv = ["fit", str(csv), "--patient", "patient", "--therapist", "therapist"]
    argv += ["--session", "session", "--predictor", "alliance", "--outcome", "symptoms"]
    argv += ["--covariates", "baseline", "--baseline", "baseline", "--out", str(out)]
    argv += ["--draws", "100", "--tune", "150", "--seed", "2", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    return out, rc, truth
