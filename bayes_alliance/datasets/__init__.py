"""Data shipped with the package (no downloads).

``example.csv`` was drawn once by :func:`bayes_alliance.simulate.simulate` with the settings and
seed recorded in ``example.json``; :func:`regenerate_example` redraws it from that record.
``mediation_between.csv`` (record ``mediation_between.json``) is a two-level data set for
between-level mediation by a patient baseline, drawn so that a two-level SEM with independent
sessions is the true model; it is the input of the lavaan reference check
(``benchmarks/lavaan_mediation.R``, ``tests/test_mediation_lavaan.py``).
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from typing import Any

import pandas as pd

from bayes_alliance.simulation import Truth, simulate

EXAMPLE_ROLES = {
    "patient": "patient",
    "therapist": "therapist",
    "session": "session",
    "predictor": "alliance",
    "outcome": "symptoms",
}

# The record behind example.csv: sizes like a clinic registry (about 40 therapists, 6-10 patients
# each, 8-20 sessions), some skipped sessions, missing ratings and dropout, a moderator and a
# therapist-rated alliance.
EXAMPLE_SETTINGS: dict[str, Any] = {
    "n_therapists": 40,
    "patients_per_therapist": [6, 10],
    "sessions": [8, 20],
    "p_missing_session": 0.06,
    "p_missing_value": 0.03,
    "dropout": 0.15,
    "moderator": True,
    "moderator_effect": 0.05,
    "sd_state_effect_patient": 0.05,
    "sd_state_effect_therapist": 0.03,
    "informant": True,
}
EXAMPLE_SEED = 20261126


def _files() -> Any:
    return resources.files("bayes_alliance.datasets")


def load_example() -> pd.DataFrame:
    """The example data: alliance and symptoms of about 320 patients of 40 therapists.

    Columns: ``therapist, patient, session, alliance, symptoms, moderator, alliance_therapist``.
    Use the roles in :data:`EXAMPLE_ROLES`; :func:`example_record` gives the true parameters.
    """
    with _files().joinpath("example.csv").open("r") as fh:
        return pd.read_csv(fh)


def example_record() -> dict[str, Any]:
    """Settings, seed and analytic truth the example data were drawn with."""
    with _files().joinpath("example.json").open("r") as fh:
        out: dict[str, Any] = json.load(fh)
        return out


def regenerate_example() -> tuple[pd.DataFrame, Truth]:
    """Redraw the example data from the recorded settings and seed."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in EXAMPLE_SETTINGS.items()}
    return simulate(seed=EXAMPLE_SEED, **settings)


def write_example(folder: str) -> None:
    """Write ``example.csv`` and ``example.json`` into ``folder`` (maintainers only).

    ``python -c "import bayes_alliance.datasets as d; d.write_example('bayes_alliance/datasets')"``
    """
    import pathlib

    df, truth = regenerate_example()
    path = pathlib.Path(folder)
    df.to_csv(path / "example.csv", index=False, float_format="%.6f")
    (path / "example.json").write_text(truth.to_json() + "\n")


MEDIATION_ROLES = {
    "patient": "patient",
    "session": "session",
    "predictor": "alliance",
    "outcome": "symptoms",
    "covariates": ["baseline"],
}

# The record behind mediation_between.csv: 200 patients x 10 complete sessions, no therapist level
# (one therapist with zero variance, column dropped), and no within-person dynamics (lags and
# cross-lags 0), so sessions are independent around the patient's latent means with a within
# covariance of x and y: exactly the two-level SEM lavaan fits. The between level is the
# mediation a: baseline -> latent mean of x, b: latent mean of x -> latent mean of y, c':
# baseline -> latent mean of y (ab = -0.2, total -0.45).
MEDIATION_SETTINGS: dict[str, Any] = {
    "n_therapists": 1,
    "patients_per_therapist": 200,
    "sessions": 10,
    "sd_therapist_predictor": 0.0,
    "sd_therapist_outcome": 0.0,
    "predictor_autoregression": 0.0,
    "outcome_autoregression": 0.0,
    "state_effect": 0.0,
    "reverse_state_effect": 0.0,
    "innovation_corr": -0.3,
    "baseline_effect_predictor": 0.4,
    "baseline_effect_outcome": -0.25,
    "trait_effect_patient": -0.5,
}
MEDIATION_SEED = 20261213


def load_mediation() -> pd.DataFrame:
    """Two-level mediation data: alliance and symptoms of 200 patients x 10 sessions and a
    standard normal patient ``baseline``.

    Columns: ``patient, session, alliance, symptoms, baseline``; roles in
    :data:`MEDIATION_ROLES`, truth in :func:`mediation_record`.
    """
    with _files().joinpath("mediation_between.csv").open("r") as fh:
        return pd.read_csv(fh)


def mediation_record() -> dict[str, Any]:
    """Settings, seed and analytic truth the mediation data were drawn with."""
    with _files().joinpath("mediation_between.json").open("r") as fh:
        out: dict[str, Any] = json.load(fh)
        return out


def regenerate_mediation() -> tuple[pd.DataFrame, Truth]:
    """Redraw the mediation data from the recorded settings and seed (therapist column dropped)."""
    with warnings.catch_warnings():
        # One therapist with zero variance: the therapist-level standardised effect is 0 / 0.
        warnings.simplefilter("ignore", RuntimeWarning)
        df, truth = simulate(seed=MEDIATION_SEED, **MEDIATION_SETTINGS)
    return df.drop(columns="therapist"), truth


def write_mediation(folder: str) -> None:
    """Write ``mediation_between.csv`` and ``mediation_between.json`` into ``folder``
    (maintainers only)."""
    import pathlib

    df, truth = regenerate_mediation()
    path = pathlib.Path(folder)
    df.to_csv(path / "mediation_between.csv", index=False, float_format="%.6f")
    # Strict JSON: the therapist level's R-squared shares are 0 / 0 here (NaN -> null).
    record = json.loads(truth.to_json(), parse_constant=lambda _: None)
    (path / "mediation_between.json").write_text(json.dumps(record, indent=2) + "\n")
