"""Data shipped with the package (no downloads).

``example.csv`` was drawn once by :func:`bayes_alliance.simulate.simulate` with the settings and
seed recorded in ``example.json``; :func:`regenerate_example` redraws it from that record.
"""

from __future__ import annotations

import json
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
